package dev.airlock.build;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestFeature;
import dev.airlock.guest.GuestLimitException;
import dev.airlock.host.CappedInputStream;
import dev.airlock.image.layer.TarReader;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import dev.airlock.service.SandboxSession;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.Pipe;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeoutException;
import org.jspecify.annotations.Nullable;

/**
 * The sandbox a build stage's steps run in, reached only through the {@link SandboxService}: RUN
 * commands, and the agent's built-ins that read and write its filesystem ({@code walk},
 * {@code pack}, {@code unpack}), never a tool of the image. It keeps the snapshot of its
 * filesystem after the last step, against which the next step's changes are found, and how many
 * of its stage's layers it holds. Removed (with its disk) when closed.
 */
final class BuildSandbox implements AutoCloseable {
    /** How long a built-in may take: the walk of a large tree, a pack of gigabytes under emulation. */
    private static final Duration BUILTIN_TIMEOUT = Duration.ofMinutes(60);
    /** What a built-in may write on stderr that the host keeps for its error message. */
    private static final int MAX_ERR = 16 << 10;

    private final SandboxService service;
    private final SandboxInfo info;
    /** The most a pack may send: no step can change more than the sandbox's disk holds. */
    private final long maxPackBytes;

    TreeSnapshot snapshot = TreeSnapshot.EMPTY;
    /** How many of its stage's layers (from the bottom) the sandbox's filesystem has. */
    int layersApplied;

    private BuildSandbox(SandboxService service, SandboxInfo info) {
        this.service = service;
        this.info = info;
        this.maxPackBytes = (info.resources().diskMiB() << 20) + (64L << 20);
    }

    /** Creates and starts the sandbox; a sandbox that does not come up is removed. */
    static BuildSandbox start(SandboxService service, CreateSpec spec) {
        SandboxInfo created = service.create(spec);
        try {
            return new BuildSandbox(service, service.start(created.id()));
        } catch (RuntimeException e) {
            removeQuietly(service, created.id());
            throw e;
        }
    }

    SandboxInfo info() {
        return info;
    }

    /**
     * Runs a step's command; its output goes to the sinks as it comes. A program that is missing
     * or not executable is {@link dev.airlock.guest.CommandNotFoundException} or
     * {@link dev.airlock.guest.CommandNotExecutableException}.
     */
    ExitStatus run(ExecSpec spec, OutputStream out, OutputStream err) throws IOException, InterruptedException {
        try (SandboxSession s = service.session(info.id())) {
            return s.channel().exec(spec, out, err).await();
        }
    }

    /** A small file of the sandbox (its /etc/passwd), or null when it has none. */
    byte @Nullable [] readSmall(String path, int maxBytes) throws IOException, InterruptedException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (SandboxSession s = service.session(info.id())) {
            s.channel().readFile(path, out, maxBytes, Duration.ofSeconds(60));
            return out.toByteArray();
        } catch (GuestLimitException e) {
            throw new BuildException(path + " in the build sandbox is larger than " + maxBytes + " bytes");
        } catch (dev.airlock.guest.GuestException e) {
            return null;
        }
    }

    /** Lists the whole filesystem (the agent's walk) and keeps it as the current snapshot. */
    TreeSnapshot walk() throws IOException, InterruptedException {
        TreeSnapshot t = builtin("walk", null, TreeSnapshot::read);
        snapshot = t;
        return t;
    }

    /** What reads a pack's tar, entry by entry. */
    @FunctionalInterface
    interface TarHandler {
        void read(TarReader tar) throws IOException;
    }

    /** Packs the given paths (the agent's pack: no recursion, no following of symlinks) into a tar. */
    void pack(java.util.List<String> paths, TarHandler handler) throws IOException, InterruptedException {
        builtin(
                "pack",
                in -> {
                    for (String p : paths) {
                        in.write(p.getBytes(StandardCharsets.UTF_8));
                        in.write(0);
                    }
                },
                archive -> {
                    handler.read(new TarReader(new CappedInputStream(
                            archive,
                            maxPackBytes,
                            "the sandbox sent more than " + (maxPackBytes >> 20) + " MiB for one step's changes")));
                    return Boolean.TRUE;
                });
    }

    /** Applies a layer tar (whiteouts included) to the sandbox's root (the agent's unpack). */
    void unpack(IoWriter tar) throws IOException, InterruptedException {
        builtin("unpack", tar, archive -> {
            archive.transferTo(OutputStream.nullOutputStream());
            return Boolean.TRUE;
        });
    }

    /** Writes what a built-in reads on stdin. */
    @FunctionalInterface
    interface IoWriter {
        void write(OutputStream out) throws IOException;
    }

    /** Reads what a built-in writes on stdout. */
    @FunctionalInterface
    private interface IoReader<T> {
        T read(InputStream in) throws IOException;
    }

    /**
     * Runs a built-in of the agent with its stdout read by {@code reader} here as it comes, and
     * its stdin written by {@code writer} on a thread of its own (the agent reads and writes at
     * once; either side waiting on the other would stall both).
     */
    private <T> T builtin(String name, @Nullable IoWriter writer, IoReader<T> reader)
            throws IOException, InterruptedException {
        try (SandboxSession s = service.session(info.id())) {
            if (!s.channel().features().contains(GuestFeature.BUILTINS)) {
                throw new BuildException("the agent of build sandbox " + info.name()
                        + " has no built-ins (an old agent); rebuild the jar and start a new daemon");
            }
            ExecSpec spec =
                    ExecSpec.builder(name).builtin(true).stdin(writer != null).build();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            Pipe pipe = Pipe.open();
            OutputStream toHost = Channels.newOutputStream(pipe.sink());
            Execution ex;
            try {
                ex = s.channel().exec(spec, toHost, new FirstBytes(err, MAX_ERR));
            } catch (IOException | InterruptedException | RuntimeException e) {
                toHost.close();
                throw e;
            }
            Thread.ofVirtual().name("build-" + name + "-end").start(() -> {
                try {
                    ex.await();
                } catch (IOException | InterruptedException | RuntimeException ignored) {
                    // awaited below as well, where it is reported
                } finally {
                    try {
                        toHost.close();
                    } catch (IOException ignored) {
                        // the reader sees the end either way
                    }
                }
            });
            Thread feeder = null;
            IOException[] fed = new IOException[1];
            if (writer != null) {
                feeder = Thread.ofVirtual().name("build-" + name + "-in").start(() -> {
                    try (OutputStream in = new BufferedOutputStream(ex.stdin(), 1 << 16)) {
                        writer.write(in);
                    } catch (IOException e) {
                        fed[0] = e;
                    }
                });
            }
            T result;
            try (InputStream out = Channels.newInputStream(pipe.source())) {
                result = reader.read(out);
                out.transferTo(OutputStream.nullOutputStream());
            } catch (IOException | RuntimeException e) {
                stop(ex);
                throw failure(name, err, e.getMessage());
            }
            ExitStatus st;
            try {
                st = ex.await(BUILTIN_TIMEOUT);
            } catch (TimeoutException e) {
                stop(ex);
                throw failure(name, err, "it took longer than " + BUILTIN_TIMEOUT.toMinutes() + " minutes");
            }
            if (feeder != null) {
                feeder.join();
            }
            if (st.shellStatus() != 0) {
                throw failure(name, err, "exit status " + st.shellStatus());
            }
            if (fed[0] != null) {
                throw failure(name, err, "writing its input failed: " + fed[0].getMessage());
            }
            return result;
        }
    }

    private BuildException failure(String name, ByteArrayOutputStream err, @Nullable String what) {
        String said = err.toString(StandardCharsets.UTF_8).strip();
        return new BuildException("the agent's " + name + " in build sandbox " + info.name() + " failed: " + what
                + (said.isEmpty() ? "" : " (" + dev.airlock.net.UntrustedText.forTerminal(said) + ")"));
    }

    private static void stop(Execution ex) {
        try {
            ex.signal(9);
        } catch (IOException | RuntimeException ignored) {
            // gone already; closing the session ends it regardless
        }
    }

    @Override
    public void close() {
        removeQuietly(service, info.id());
    }

    private static void removeQuietly(SandboxService service, String id) {
        try {
            service.remove(id, true);
        } catch (RuntimeException e) {
            System.err.println("airlock: could not remove build sandbox " + id + ": " + e.getMessage());
        }
    }

    /** Keeps the first {@code max} bytes written and drops the rest. */
    private static final class FirstBytes extends OutputStream {
        private final ByteArrayOutputStream kept;
        private final int max;

        FirstBytes(ByteArrayOutputStream kept, int max) {
            this.kept = kept;
            this.max = max;
        }

        @Override
        public void write(int b) {
            if (kept.size() < max) {
                kept.write(b);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) {
            kept.write(b, off, Math.max(0, Math.min(len, max - kept.size())));
        }
    }
}
