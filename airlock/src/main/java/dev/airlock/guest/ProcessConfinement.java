package dev.airlock.guest;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * What the agent applies to a command's process just before it runs it, as an OCI runtime does to
 * a container's process: resource limits, capability sets, no_new_privs, a seccomp filter, umask,
 * supplementary groups and a hostname. Every part is optional; an absent part leaves the agent's
 * default.
 *
 * @param rlimits {@code setrlimit} calls, applied before the user changes (raising a hard limit
 *     needs CAP_SYS_RESOURCE)
 * @param capabilities the five capability sets, or null to keep the agent's
 * @param noNewPrivileges {@code PR_SET_NO_NEW_PRIVS}
 * @param seccomp a classic BPF program ({@code struct sock_filter} entries, 8 bytes each, in wire
 *     order: code u16, jt u8, jf u8, k u32), or null for none
 * @param umask the file mode creation mask, or null for 0022
 * @param groups supplementary group ids (added to those of the user's /etc/group entries), or null
 * @param hostname the hostname the process sees, in a UTS namespace of its own, or null for the
 *     guest's
 * @param mounts the mount namespace of an OCI container's process (made once per VM, joined by
 *     every process that carries the same), or null for the guest's own
 */
public record ProcessConfinement(
        List<Rlimit> rlimits,
        @Nullable Capabilities capabilities,
        boolean noNewPrivileges,
        byte @Nullable [] seccomp,
        @Nullable Integer umask,
        @Nullable List<Long> groups,
        @Nullable String hostname,
        @Nullable ContainerMounts mounts) {

    /** The agent's bounds: the kernel's own BPF_MAXINSNS and the agent's group table. */
    public static final int MAX_FILTER_INSTRUCTIONS = 4096;

    public static final int MAX_GROUPS = 256;

    static final int TAG_RLIMIT = 9;
    static final int TAG_CAPS = 10;
    static final int TAG_NO_NEW_PRIVS = 11;
    static final int TAG_SECCOMP = 12;
    static final int TAG_UMASK = 13;
    static final int TAG_GROUPS = 14;
    static final int TAG_HOSTNAME = 15;

    public ProcessConfinement {
        rlimits = List.copyOf(rlimits);
        if (rlimits.size() > 64) {
            throw new IllegalArgumentException("too many rlimits: " + rlimits.size());
        }
        if (seccomp != null) {
            seccomp = seccomp.clone();
            if (seccomp.length == 0 || seccomp.length % 8 != 0 || seccomp.length / 8 > MAX_FILTER_INSTRUCTIONS) {
                throw new IllegalArgumentException("a seccomp program is 1 to " + MAX_FILTER_INSTRUCTIONS
                        + " instructions of 8 bytes, not " + seccomp.length + " bytes");
            }
        }
        if (umask != null && (umask < 0 || umask > 0777)) {
            throw new IllegalArgumentException("umask out of range: " + umask);
        }
        if (hostname != null && (hostname.isEmpty() || hostname.length() > 64 || hostname.indexOf('\0') >= 0)) {
            throw new IllegalArgumentException("a hostname is 1 to 64 characters without NUL: " + hostname);
        }
        if (groups != null) {
            groups = List.copyOf(groups);
            if (groups.size() > MAX_GROUPS) {
                throw new IllegalArgumentException("more than " + MAX_GROUPS + " supplementary groups");
            }
            for (long g : groups) {
                if (g < 0 || g > 0xfffffffeL) {
                    throw new IllegalArgumentException("group id out of range: " + g);
                }
            }
        }
    }

    /** One {@code setrlimit}: the resource's number (RLIMIT_NOFILE is 7) and its limits (-1: infinity). */
    public record Rlimit(int resource, long soft, long hard) {
        public Rlimit {
            if (resource < 0 || resource > 63) {
                throw new IllegalArgumentException("rlimit resource out of range: " + resource);
            }
        }
    }

    /** The capability sets as bit masks (bit n: capability n). */
    public record Capabilities(long bounding, long effective, long permitted, long inheritable, long ambient) {}

    void write(Tlv.Writer tlv) {
        for (Rlimit r : rlimits) {
            byte[] b = new byte[20];
            put(b, 0, r.resource(), 4);
            put(b, 4, r.soft(), 8);
            put(b, 12, r.hard(), 8);
            tlv.bytes(TAG_RLIMIT, b);
        }
        if (capabilities != null) {
            byte[] b = new byte[40];
            long[] sets = {
                capabilities.bounding(),
                capabilities.effective(),
                capabilities.permitted(),
                capabilities.inheritable(),
                capabilities.ambient()
            };
            for (int i = 0; i < sets.length; i++) {
                put(b, i * 8, sets[i], 8);
            }
            tlv.bytes(TAG_CAPS, b);
        }
        if (noNewPrivileges) {
            tlv.u8(TAG_NO_NEW_PRIVS, 1);
        }
        if (seccomp != null) {
            tlv.bytes(TAG_SECCOMP, seccomp);
        }
        if (umask != null) {
            tlv.u32(TAG_UMASK, umask);
        }
        if (groups != null) {
            byte[] b = new byte[groups.size() * 4];
            for (int i = 0; i < groups.size(); i++) {
                put(b, i * 4, groups.get(i), 4);
            }
            tlv.bytes(TAG_GROUPS, b);
        }
        if (hostname != null) {
            tlv.string(TAG_HOSTNAME, hostname);
        }
        if (mounts != null) {
            mounts.write(tlv);
        }
    }

    private static void put(byte[] b, int off, long v, int len) {
        for (int i = 0; i < len; i++) {
            b[off + i] = (byte) (v >>> (8 * (len - 1 - i)));
        }
    }
}
