package dev.airlock.archive;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.BoundedBuffer;
import dev.airlock.net.UntrustedText;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.Pipe;
import java.nio.file.Path;

/**
 * Copies a directory out of a sandbox: the guest's tar packs it into one stream (never file by
 * file), and the host unpacks that stream itself with {@link TarUnpacker}. Never the host's own
 * tar, which would honour the guest's owners, setuid bits, device nodes and links.
 */
public final class GuestDirectoryCopy {
    // GNU tar pads its output to a 10 KiB record; a sandbox that keeps sending past the end of
    // the archive is stopped rather than drained forever.
    private static final int TRAILER_BYTES = 1 << 20;

    private GuestDirectoryCopy() {}

    /**
     * Copies {@code guestDir} (absolute, without a trailing slash) to {@code target} on the host:
     * its contents land in {@code target}, which is created if missing.
     */
    public static TarUnpacker.Unpacked copy(GuestChannel ch, String guestDir, Path target)
            throws IOException, InterruptedException {
        int slash = guestDir.lastIndexOf('/');
        String parent = slash > 0 ? guestDir.substring(0, slash) : "/";
        String name = guestDir.substring(slash + 1);
        if (name.isEmpty()) {
            throw new SandboxException("cannot copy the sandbox's root directory; name a directory below it");
        }
        // as root, whatever the sandbox's default user: docker cp reads everything too
        ExecSpec spec = ExecSpec.builder("tar", "-cf", "-", "-C", parent, name)
                .user("0")
                .build();
        // The guest's tar may say anything on stderr: only a message's worth is kept.
        BoundedBuffer err = new BoundedBuffer(4096);
        Pipe pipe = Pipe.open();
        OutputStream toHost = Channels.newOutputStream(pipe.sink());
        try (InputStream archive = Channels.newInputStream(pipe.source())) {
            Execution tar;
            try {
                tar = ch.exec(spec, toHost, err);
            } catch (IOException | InterruptedException | RuntimeException e) {
                toHost.close();
                throw e;
            }
            // The archive ends for the unpacker when the guest's tar has exited and all its output is in.
            Thread.ofVirtual().name("cp-archive-end").start(() -> {
                try {
                    tar.await();
                } catch (IOException | InterruptedException | RuntimeException ignored) {
                    // The caller awaits it too and reports what went wrong.
                } finally {
                    try {
                        toHost.close();
                    } catch (IOException ignored) {
                        // Nothing is left to tell the reader.
                    }
                }
            });
            TarUnpacker.Unpacked unpacked;
            try {
                unpacked = TarUnpacker.unpack(archive, target, name, TarUnpacker.Limits.DEFAULT);
                drainTrailer(archive);
            } catch (IOException e) {
                stop(tar);
                throw new SandboxException(
                        "copying " + guestDir + " out of the sandbox stopped: " + e.getMessage() + said(err));
            }
            ExitStatus status = tar.await();
            if (status.shellStatus() != 0) {
                throw new SandboxException("copying " + guestDir + " out of the sandbox failed: its tar exited "
                        + status.shellStatus() + said(err));
            }
            return unpacked;
        }
    }

    /** Reads what follows the archive's end (its padding) until the guest's tar is done, within a bound. */
    private static void drainTrailer(InputStream archive) throws IOException {
        byte[] buf = new byte[8192];
        long trailer = 0;
        for (int n; (n = archive.read(buf)) >= 0; ) {
            trailer += n;
            if (trailer > TRAILER_BYTES) {
                throw new ArchiveRefusedException("refused the archive: the sandbox kept sending more than "
                        + TRAILER_BYTES + " bytes after its end");
            }
        }
    }

    /** Stops the guest's tar; the channel's owner closes the channel, which ends the stream regardless. */
    private static void stop(Execution tar) {
        try {
            tar.signal(9);
        } catch (IOException ignored) {
            // The process or the channel is gone already.
        }
    }

    private static String said(BoundedBuffer err) {
        String text = UntrustedText.forTerminal(err.text().strip());
        return text.isEmpty() ? "" : " (the sandbox's tar said: " + text + ")";
    }
}
