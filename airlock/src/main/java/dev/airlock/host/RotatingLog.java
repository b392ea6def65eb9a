package dev.airlock.host;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;

/**
 * A log another process appends to (QEMU's console chardev, a container runtime's output) that
 * the guest can fill as fast as it likes, kept within a size by its reader: once it is past its
 * cap, its last half is copied to {@code NAME.1} (replacing the one before) and the log is
 * truncated to nothing, where the writer, which appends, carries on. So the two files hold at most
 * about 1.5 times the cap plus what is written while a trim runs. Bytes written between the copy
 * and the truncation are lost; for a log a guest floods that is the price of never stopping it.
 */
public final class RotatingLog {
    /** The cap of a sandbox's console or runtime log. */
    public static final long CAP = 8L << 20;

    private RotatingLog() {}

    /** The file a trim keeps the end of the log in. */
    public static Path previous(Path log) {
        return log.resolveSibling(log.getFileName() + ".1");
    }

    /**
     * Trims {@code log} when it takes more than {@code maxBytes} of disk; returns whether it did.
     * A missing log is fine. Disk, not size: a guest that writes its console through a descriptor
     * of its own ({@code /proc/1/fd/1} in a container, opened without O_APPEND) carries on at its
     * own offset after a truncation, so the file's size stays large over a hole; what it costs
     * the host, and what must stay capped, is its blocks.
     */
    public static boolean trim(Path log, long maxBytes) throws IOException {
        long used;
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            used = sys.allocatedBytes(log.toString());
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new IOException("cannot stat " + log + ": " + e.getMessage(), e);
        }
        if (used <= maxBytes) {
            return false;
        }
        byte[] end = HostFiles.tail(log, (int) Math.min(maxBytes / 2, Integer.MAX_VALUE - 8));
        Path prev = previous(log);
        Path tmp = Files.createTempFile(
                log.getParent(),
                prev.getFileName().toString(),
                ".tmp",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            Files.write(tmp, end);
            Files.move(tmp, prev, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
        try (FileChannel ch = FileChannel.open(log, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
            ch.truncate(0);
        }
        return true;
    }

    /** The last {@code maxBytes} of the log, reaching into {@code NAME.1} when the log itself is shorter. */
    public static byte[] tail(Path log, int maxBytes) throws IOException {
        byte[] current = HostFiles.tail(log, maxBytes);
        if (current.length >= maxBytes) {
            return current;
        }
        byte[] before = HostFiles.tail(previous(log), maxBytes - current.length);
        byte[] both = Arrays.copyOf(before, before.length + current.length);
        System.arraycopy(current, 0, both, before.length, current.length);
        return both;
    }
}
