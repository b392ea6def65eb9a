package dev.airlock.guest;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;

/**
 * The mount namespace an OCI container's process runs in, made by the agent from an OCI config:
 * its mounts in order, then masked paths, read-only paths and a read-only root (runc's order).
 * The agent makes it once per VM and every later process carrying the same mounts joins it, as
 * runc's exec enters the container's mount namespace.
 *
 * @param mounts the config's mounts, in order
 * @param masked paths made unreadable: a file gets /dev/null bound over it, a directory a
 *     read-only empty tmpfs
 * @param readonly paths bound onto themselves read-only
 * @param rootReadonly the root remounted read-only, after everything else
 */
public record ContainerMounts(List<Mount> mounts, List<String> masked, List<String> readonly, boolean rootReadonly) {

    /** The agent's bounds. */
    public static final int MAX_MOUNTS = 64;

    public static final int MAX_PATHS = 128;

    /** Mount kinds the agent makes ({@code bind}: a path already in the VM's root, bound onto itself). */
    public static final Set<String> TYPES =
            Set.of("tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "bind");

    static final int TAG_MOUNT = 17;
    static final int TAG_MASKED = 18;
    static final int TAG_READONLY = 19;
    static final int TAG_ROOT_RO = 20;

    /** Linux's per-mount flags (linux/mount.h) that a mount may carry. */
    public static final long MS_RDONLY = 1;

    public static final long MS_NOSUID = 2;
    public static final long MS_NODEV = 4;
    public static final long MS_NOEXEC = 8;
    public static final long MS_SYNCHRONOUS = 16;
    public static final long MS_DIRSYNC = 128;
    public static final long MS_NOATIME = 1024;
    public static final long MS_NODIRATIME = 2048;
    public static final long MS_RELATIME = 1 << 21;
    public static final long MS_STRICTATIME = 1 << 24;

    private static final long ALLOWED_FLAGS = MS_RDONLY
            | MS_NOSUID
            | MS_NODEV
            | MS_NOEXEC
            | MS_SYNCHRONOUS
            | MS_DIRSYNC
            | MS_NOATIME
            | MS_NODIRATIME
            | MS_RELATIME
            | MS_STRICTATIME;

    public ContainerMounts {
        mounts = List.copyOf(mounts);
        masked = List.copyOf(masked);
        readonly = List.copyOf(readonly);
        if (mounts.size() > MAX_MOUNTS) {
            throw new IllegalArgumentException("more than " + MAX_MOUNTS + " mounts");
        }
        if (masked.size() > MAX_PATHS || readonly.size() > MAX_PATHS) {
            throw new IllegalArgumentException("more than " + MAX_PATHS + " masked or read-only paths");
        }
        masked.forEach(p -> requirePath("masked path", p));
        readonly.forEach(p -> requirePath("read-only path", p));
    }

    /**
     * One mount.
     *
     * @param type one of {@link #TYPES}
     * @param destination an absolute path in the container
     * @param flags {@code MS_*} flags
     * @param data the file system's options ({@code size=1m,mode=755}), or ""
     * @param copyUp tmpfs only: the directory's former contents are copied onto the new tmpfs
     *     (podman's {@code tmpcopyup})
     */
    public record Mount(String type, String destination, long flags, String data, boolean copyUp) {
        public Mount {
            if (!TYPES.contains(type)) {
                throw new IllegalArgumentException("the agent does not mount " + type);
            }
            requirePath("mount destination", destination);
            if ((flags & ~ALLOWED_FLAGS) != 0) {
                throw new IllegalArgumentException(
                        "mount flags " + Long.toHexString(flags) + " are not per-mount flags");
            }
            if (data.indexOf('\0') >= 0 || data.length() >= 1024) {
                throw new IllegalArgumentException("mount options are under 1024 bytes without NUL: " + data);
            }
            if (copyUp && !type.equals("tmpfs")) {
                throw new IllegalArgumentException("only a tmpfs is copied up");
            }
        }
    }

    private static void requirePath(String what, String p) {
        if (!p.startsWith("/") || p.indexOf('\0') >= 0 || p.getBytes(StandardCharsets.UTF_8).length >= 4096) {
            throw new IllegalArgumentException(what + " is not an absolute path under 4096 bytes without NUL: " + p);
        }
    }

    void write(Tlv.Writer tlv) {
        for (Mount m : mounts) {
            byte[] strings =
                    (m.type() + "\0" + m.destination() + "\0" + m.data() + "\0").getBytes(StandardCharsets.UTF_8);
            byte[] b = new byte[5 + strings.length];
            for (int i = 0; i < 4; i++) {
                b[i] = (byte) (m.flags() >>> (8 * (3 - i)));
            }
            b[4] = (byte) (m.copyUp() ? 1 : 0);
            System.arraycopy(strings, 0, b, 5, strings.length);
            tlv.bytes(TAG_MOUNT, b);
        }
        masked.forEach(p -> tlv.bytes(TAG_MASKED, (p + "\0").getBytes(StandardCharsets.UTF_8)));
        readonly.forEach(p -> tlv.bytes(TAG_READONLY, (p + "\0").getBytes(StandardCharsets.UTF_8)));
        if (rootReadonly) {
            tlv.u8(TAG_ROOT_RO, 1);
        }
    }
}
