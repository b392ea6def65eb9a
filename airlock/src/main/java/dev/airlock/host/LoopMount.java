package dev.airlock.host;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * A filesystem image file mounted through a loop device by system calls, what {@code mount -o
 * loop} does without forking mount(8): a free device from {@code /dev/loop-control}, the file
 * bound to it with one {@code LOOP_CONFIGURE} (Linux 5.8+), then {@code mount(2)}. The device is
 * bound with autoclear, so it is released by the kernel when the mount goes (or at once if the
 * mount fails): nothing is left to detach, as with mount(8)'s own loop devices.
 *
 * <p>A file still bound to a loop device is mounted from that device, never bound to a second
 * one: its file system may still be alive after our unmount (a copy of the mount in another
 * mount namespace, which every process that makes one while the file is mounted has, if only
 * until it moves its root), and a second device would give a second file system on the same
 * file, blind to what the first had not yet written back (a sandbox disk's file written before
 * a stop came back empty after the start). Mounted from the same device, the kernel hands back
 * the file system that is still alive.
 *
 * <p>Why: sandboxes of the OCI runtimes mount a loop disk on every start; a fork of mount(8)
 * took 16-130 ms of each start on this 2-core host, more under load.
 */
public final class LoopMount {
    public static final long MS_RDONLY = 0x1;
    public static final long MS_NOSUID = 0x2;
    public static final long MS_NODEV = 0x4;
    public static final long MS_NOEXEC = 0x8;
    public static final long MS_NOATIME = 0x400;

    private static final long LOOP_CTL_GET_FREE = 0x4C82;
    private static final long LOOP_CONFIGURE = 0x4C0A;
    private static final long LOOP_GET_STATUS64 = 0x4C05;
    /** struct loop_info64; it starts with the backing file's lo_device and lo_inode (u64 each). */
    private static final int STATUS_SIZE = 232;

    private static final int LO_FLAGS_READ_ONLY = 0x1;
    private static final int LO_FLAGS_AUTOCLEAR = 0x4;
    /** struct loop_config: u32 fd, u32 block_size, struct loop_info64 (232 bytes), u64 reserved[8]. */
    private static final int CONFIG_SIZE = 4 + 4 + 232 + 8 * 8;
    /** Offsets in loop_config of loop_info64's lo_flags (after five u64 and three u32) and lo_file_name[64]. */
    private static final int INFO_FLAGS = 8 + 52;

    private static final int INFO_FILE_NAME = 8 + 56;
    private static final int FILE_NAME_MAX = 63;
    private static final int EBUSY = 16;
    /** Another process may bind the device LOOP_CTL_GET_FREE named before we do: take the next. */
    private static final int ATTEMPTS = 32;

    private LoopMount() {}

    /**
     * Mounts {@code file}, a filesystem of {@code type}, on {@code target} with mount {@code
     * flags}; read-only ({@link #MS_RDONLY}) binds the loop device read-only too.
     */
    public static void mount(Path file, Path target, String type, long flags) throws LinuxSyscalls.ErrnoException {
        boolean readOnly = (flags & MS_RDONLY) != 0;
        int mode = (readOnly ? LinuxSyscalls.O_RDONLY : LinuxSyscalls.O_RDWR) | LinuxSyscalls.O_CLOEXEC;
        try (LinuxSyscalls sys = new LinuxSyscalls();
                Arena arena = Arena.ofConfined()) {
            int backing = sys.open(file.toString(), mode);
            try {
                Bound bound = boundDevice(sys, arena, file, mode);
                if (bound != null) {
                    try {
                        sys.mount(bound.device(), target.toString(), type, flags, "");
                        return;
                    } finally {
                        // held open until mounted: the device cannot be unbound under the mount
                        sys.close(bound.fd());
                    }
                }
                MemorySegment config = arena.allocate(CONFIG_SIZE, 8);
                config.set(JAVA_INT, 0, backing);
                config.set(JAVA_INT, INFO_FLAGS, LO_FLAGS_AUTOCLEAR | (readOnly ? LO_FLAGS_READ_ONLY : 0));
                // the name losetup and /sys show for the device; the kernel keeps 63 bytes of it
                byte[] name = file.toString().getBytes(StandardCharsets.UTF_8);
                MemorySegment.copy(name, 0, config, JAVA_BYTE, INFO_FILE_NAME, Math.min(name.length, FILE_NAME_MAX));
                int control = sys.open("/dev/loop-control", LinuxSyscalls.O_RDWR | LinuxSyscalls.O_CLOEXEC);
                try {
                    bindAndMount(sys, control, config, mode, target, type, flags);
                } finally {
                    sys.close(control);
                }
            } finally {
                sys.close(backing);
            }
        }
    }

    /** A loop device already bound to the file, open (which keeps it bound). */
    private record Bound(String device, int fd) {}

    /**
     * The loop device {@code file} is bound to, if any: found by the path {@code /sys} shows for
     * each bound device, then checked by the backing file's device and inode numbers (the path
     * alone could name another file since). Null when there is none, or when the one there goes
     * while we look ({@code ENXIO}: its file system is gone too, so a new binding is safe).
     */
    private static @Nullable Bound boundDevice(LinuxSyscalls sys, Arena arena, Path file, int mode)
            throws LinuxSyscalls.ErrnoException {
        String path;
        long dev;
        long ino;
        try {
            path = file.toRealPath().toString();
            dev = (Long) Files.getAttribute(file, "unix:dev");
            ino = (Long) Files.getAttribute(file, "unix:ino");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the attributes of " + file, e);
        }
        try (DirectoryStream<Path> devices = Files.newDirectoryStream(Path.of("/sys/block"), "loop*")) {
            for (Path d : devices) {
                String shown;
                try {
                    shown = Files.readString(d.resolve("loop/backing_file")).strip();
                } catch (IOException unbound) {
                    continue; // no file bound (the attribute exists only while one is)
                }
                if (!shown.equals(path)) {
                    continue;
                }
                String device = "/dev/" + d.getFileName();
                Bound bound = openIfBacking(sys, arena, device, mode, dev, ino);
                if (bound != null) {
                    return bound;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the loop devices in /sys/block", e);
        }
        return null;
    }

    private static @Nullable Bound openIfBacking(
            LinuxSyscalls sys, Arena arena, String device, int mode, long dev, long ino)
            throws LinuxSyscalls.ErrnoException {
        int loop;
        try {
            loop = sys.open(device, mode);
        } catch (LinuxSyscalls.ErrnoException e) {
            if (e.errno() == LinuxSyscalls.ENXIO) {
                return null;
            }
            throw e;
        }
        boolean keep = false;
        try {
            MemorySegment status = arena.allocate(STATUS_SIZE, 8);
            try {
                sys.ioctl(loop, LOOP_GET_STATUS64, status, "LOOP_GET_STATUS64 " + device);
            } catch (LinuxSyscalls.ErrnoException e) {
                if (e.errno() == LinuxSyscalls.ENXIO) {
                    return null; // unbound since /sys showed it
                }
                throw e;
            }
            keep = status.get(JAVA_LONG, 0) == dev && status.get(JAVA_LONG, 8) == ino;
            return keep ? new Bound(device, loop) : null;
        } finally {
            if (!keep) {
                sys.close(loop);
            }
        }
    }

    private static void bindAndMount(
            LinuxSyscalls sys, int control, MemorySegment config, int mode, Path target, String type, long flags)
            throws LinuxSyscalls.ErrnoException {
        LinuxSyscalls.ErrnoException busy = null;
        for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
            int n = sys.ioctl(control, LOOP_CTL_GET_FREE, 0L, "LOOP_CTL_GET_FREE");
            String device = "/dev/loop" + n;
            int loop = sys.open(device, mode);
            try {
                try {
                    sys.ioctl(loop, LOOP_CONFIGURE, config, "LOOP_CONFIGURE " + device);
                } catch (LinuxSyscalls.ErrnoException e) {
                    if (e.errno() != EBUSY) {
                        throw e;
                    }
                    busy = e;
                    continue;
                }
                sys.mount(device, target.toString(), type, flags, "");
                return;
            } finally {
                // the mount holds the device now; without one, autoclear releases it here
                sys.close(loop);
            }
        }
        throw busy != null ? busy : new LinuxSyscalls.ErrnoException("LOOP_CONFIGURE", EBUSY);
    }
}
