package dev.airlock.host;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A log another process appends to (QEMU's console chardev, a container runtime's output) that
 * the guest can fill as fast as it likes, kept within a size by its reader: once it takes more
 * disk than its cap, everything but its last half is punched out (the blocks freed, the file's
 * size and every writer's offset left alone). Nothing is copied and nothing truncated, so a line
 * written while a trim runs is never lost, and a guest that writes through a descriptor of its own
 * (no O_APPEND) keeps writing real data at its offset. The file grows in size over a hole; what it
 * costs the host, its blocks, stays capped. Readers read its end from the first data there.
 */
public final class RotatingLog {
    /** The cap of a sandbox's console or runtime log. */
    public static final long CAP = 8L << 20;

    private static final long BLOCK = 4096;

    private RotatingLog() {}

    /**
     * Trims {@code log} when it takes more than {@code maxBytes} of disk; returns whether it did.
     * A missing log is fine. The log is opened without following a symlink: a guest that can
     * name files in the sandbox's directory must not make the daemon punch another file.
     */
    public static boolean trim(Path log, long maxBytes) throws IOException {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            long used = sys.allocatedBytes(log.toString());
            if (used <= maxBytes) {
                return false;
            }
            int fd = sys.open(
                    log.toString(), LinuxSyscalls.O_WRONLY | LinuxSyscalls.O_NOFOLLOW | LinuxSyscalls.O_CLOEXEC);
            try {
                long size = sys.lseek(fd, 0, LinuxSyscalls.SEEK_END);
                long keepFrom = Math.max(0, size - maxBytes / 2) / BLOCK * BLOCK;
                if (keepFrom > 0) {
                    sys.punchHole(fd, 0, keepFrom);
                }
            } finally {
                sys.close(fd);
            }
            return true;
        } catch (LinuxSyscalls.ErrnoException e) {
            if (e.errno() == LinuxSyscalls.ENOENT) {
                return false;
            }
            throw new IOException("cannot trim " + log + ": " + e.getMessage(), e);
        }
    }

    /** The last {@code maxBytes} of the log at most, from the first data there (never the hole before it). */
    public static byte[] tail(Path log, int maxBytes) throws IOException {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int fd = sys.open(log.toString(), LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_CLOEXEC);
            try {
                long size = sys.lseek(fd, 0, LinuxSyscalls.SEEK_END);
                long from = sys.lseek(fd, Math.max(0, size - maxBytes), LinuxSyscalls.SEEK_DATA);
                if (from < 0) {
                    return new byte[0];
                }
                sys.lseek(fd, from, 0);
                int length = (int) Math.min(maxBytes, size - from);
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment buf = arena.allocate(Math.max(1, length));
                    long got = 0;
                    while (got < length) {
                        long n = sys.read(fd, buf.asSlice(got), length - got);
                        if (n <= 0) {
                            break;
                        }
                        got += n;
                    }
                    return buf.asSlice(0, got).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                }
            } finally {
                sys.close(fd);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            if (e.errno() == LinuxSyscalls.ENOENT) {
                return new byte[0];
            }
            throw new IOException("cannot read " + log + ": " + e.getMessage(), e);
        }
    }
}
