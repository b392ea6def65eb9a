package dev.airlock.sdk;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.type.TypeReference;

/**
 * One sandbox. Its methods act on the daemon's sandbox of this id; {@link #info()} is the
 * description it had when this object was made or last {@link #refresh() refreshed}.
 */
public final class Sandbox {
    /** The most a blocking {@link #exec(Command)} keeps per stream. */
    public static final int MAX_OUTPUT = 64 << 20;

    private final Airlock airlock;
    private volatile SandboxInfo info;

    Sandbox(Airlock airlock, SandboxInfo info) {
        this.airlock = airlock;
        this.info = info;
    }

    public String id() {
        return info.id();
    }

    public String name() {
        return info.name();
    }

    /** The description as of the last call that returned one. */
    public SandboxInfo info() {
        return info;
    }

    /** Asks the daemon for the sandbox's description now. */
    public SandboxInfo refresh() {
        return update(airlock.call("GET", path(), null, SandboxInfo.class));
    }

    /** Boots (or restores) it; returns once its agent answers. */
    public SandboxInfo start() {
        return update(airlock.call("POST", path() + "/start", null, SandboxInfo.class));
    }

    /** Powers it off (its disk stays). */
    public SandboxInfo stop() {
        return update(airlock.call("POST", path() + "/stop", null, SandboxInfo.class));
    }

    /** Saves it to disk, memory and processes included, and frees its memory (microVM only). */
    public SandboxInfo pause() {
        return update(airlock.call("POST", path() + "/pause", null, SandboxInfo.class));
    }

    /** Brings a paused sandbox back, its processes where they were. */
    public SandboxInfo resume() {
        return update(airlock.call("POST", path() + "/resume", null, SandboxInfo.class));
    }

    /** Clones it {@code n} times (memory, processes and files at one instant), named NAME-1 ... NAME-n. */
    public List<Sandbox> fork(int n) {
        List<SandboxInfo> clones =
                airlock.call("POST", path() + "/fork", Map.of("count", n), new TypeReference<List<SandboxInfo>>() {});
        return clones.stream().map(i -> new Sandbox(airlock, i)).toList();
    }

    /** Removes it and its disk, running or not. */
    public void remove() {
        airlock.raw("DELETE", path() + "?force=true", null);
    }

    /** Runs a command and waits for it; its output is kept whole (up to {@link #MAX_OUTPUT} per stream). */
    public ExecResult exec(Command command) {
        Capped out = new Capped();
        Capped err = new Capped();
        try (Execution ex = Execution.start(airlock, path(), command, null, new OutputHandler() {
            @Override
            public void stdout(byte[] bytes) {
                out.writeBytes(bytes);
            }

            @Override
            public void stderr(byte[] bytes) {
                err.writeBytes(bytes);
            }
        })) {
            byte[] stdin = command.stdinBytes();
            if (stdin != null) {
                ex.writeStdinUnlessEnded(stdin);
            }
            ex.closeStdin();
            ExitStatus st = ex.await();
            return new ExecResult(
                    st.exitCode(), st.signal(), st.timedOut(), st.oomKilled(), out.toByteArray(), err.toByteArray());
        } catch (IOException e) {
            throw airlock.unreachable("an exec in " + name(), e);
        }
    }

    /** Runs a shell command line ({@code sh -c LINE}) and waits for it. */
    public ExecResult sh(String line) {
        return exec(Command.of("sh", "-c", line));
    }

    /**
     * Starts a command whose output goes to {@code handler} as it comes; write its stdin through
     * the returned {@link Execution}, which must be closed (or awaited).
     */
    public Execution exec(Command command, OutputHandler handler) {
        try {
            return Execution.start(airlock, path(), command, null, handler);
        } catch (IOException e) {
            throw airlock.unreachable("an exec in " + name(), e);
        }
    }

    /** A pseudo-terminal session running {@code command} (a login shell for {@code null}). */
    public Terminal terminal(@Nullable Command command, int rows, int cols) {
        try {
            return Terminal.open(
                    airlock, path(), command != null ? command : Command.of("/bin/bash", "-l"), rows, cols);
        } catch (IOException e) {
            throw airlock.unreachable("a terminal in " + name(), e);
        }
    }

    /** A login shell on a 24x80 pseudo-terminal. */
    public Terminal terminal() {
        return terminal(null, 24, 80);
    }

    /** The sandbox's files. */
    public SandboxFiles files() {
        return new SandboxFiles(airlock, path());
    }

    /** Its workspace's commits into branch {@code airlock/NAME} of its host repository (fast-forward only). */
    public PullResult pull() {
        return pull(null);
    }

    /** Its workspace's commits into {@code branch} of its host repository. */
    public PullResult pull(@Nullable String branch) {
        Map<String, Object> spec = branch == null ? Map.of() : Map.of("branch", branch);
        return airlock.call("POST", path() + "/pull", spec, PullResult.class);
    }

    /** What changed in its workspace since it was created, as a git diff. */
    public String diff() {
        return new String(airlock.raw("GET", path() + "/diff", null), StandardCharsets.UTF_8);
    }

    /** This sandbox's lifecycle events from now on. */
    public EventStream events() {
        return new EventStream(airlock, id());
    }

    private String path() {
        return Airlock.sandboxPath(info.id());
    }

    private SandboxInfo update(SandboxInfo now) {
        info = now;
        return now;
    }

    @Override
    public String toString() {
        return "Sandbox[" + info.name() + " " + info.state() + "]";
    }

    /** Keeps the first {@link #MAX_OUTPUT} bytes. */
    private static final class Capped extends ByteArrayOutputStream {
        @Override
        public synchronized void write(byte[] b, int off, int len) {
            super.write(b, off, Math.max(0, Math.min(len, MAX_OUTPUT - size())));
        }
    }

    static void closeQuietly(@Nullable OutputStream o) {
        if (o != null) {
            try {
                o.close();
            } catch (IOException e) {
                // Nothing more to send.
            }
        }
    }
}
