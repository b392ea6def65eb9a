package dev.airlock.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.LinuxSyscalls;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A small ext4 filesystem on a loop device that can go through a host crash: {@link #crash} shuts
 * it down the way xfstests' "godown" does ({@code EXT4_IOC_SHUTDOWN}, without flushing the journal
 * or any dirty data), then mounts it again. What a real crash would keep, data fsynced and
 * journal transactions committed, is there afterwards; nothing else is. Real kernel, real ext4:
 * the host's own filesystem is ext4 too.
 */
public final class HostCrashDisk implements AutoCloseable {
    /** {@code _IOR('X', 125, __u32)}. */
    private static final long EXT4_IOC_SHUTDOWN = 0x8004587DL;
    /** Neither the journal nor dirty data is written: as if the power went. */
    private static final int EXT4_GOING_FLAGS_NOLOGFLUSH = 0x2;

    private final Path image;
    private final Path mountPoint;

    private HostCrashDisk(Path image, Path mountPoint) {
        this.image = image;
        this.mountPoint = mountPoint;
    }

    /** Makes a {@code mib} MiB ext4 image in {@code dir} and mounts it; needs root, as sandboxes do. */
    public static HostCrashDisk make(Path dir, int mib) throws IOException {
        Path image = dir.resolve("crash-disk.ext4");
        Path mountPoint = Files.createDirectories(dir.resolve("crash-disk"));
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength((long) mib << 20);
        }
        run("mkfs.ext4", "-q", image.toString());
        HostCrashDisk disk = new HostCrashDisk(image, mountPoint);
        disk.mount();
        return disk;
    }

    /** Where the filesystem is mounted. */
    public Path root() {
        return mountPoint;
    }

    /** Writes everything out, as time would before the step a test crashes after. */
    public void settle() {
        run("sync", "-f", mountPoint.toString());
    }

    /** The host crashes: what was not fsynced or committed is lost. The filesystem is mounted again. */
    public void crash() throws IOException {
        try (LinuxSyscalls sys = new LinuxSyscalls();
                Arena arena = Arena.ofConfined()) {
            int fd = sys.open(mountPoint.toString(), LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_DIRECTORY);
            try {
                MemorySegment flags = arena.allocateFrom(ValueLayout.JAVA_INT, EXT4_GOING_FLAGS_NOLOGFLUSH);
                sys.ioctl(fd, EXT4_IOC_SHUTDOWN, flags, "EXT4_IOC_SHUTDOWN");
            } finally {
                sys.close(fd);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new IOException("cannot shut down " + mountPoint + ": " + e.getMessage(), e);
        }
        run("umount", mountPoint.toString());
        mount();
    }

    private void mount() {
        run("mount", "-o", "loop", image.toString(), mountPoint.toString());
    }

    @Override
    public void close() {
        HostCommand.run(List.of("umount", mountPoint.toString()), null, null);
        HostFiles.deleteTree(image);
    }

    private static void run(String... argv) {
        HostCommand.Result r = HostCommand.run(List.of(argv), null, null);
        assertThat(r.exitCode()).as(String.join(" ", argv) + ": " + r.output()).isZero();
    }
}
