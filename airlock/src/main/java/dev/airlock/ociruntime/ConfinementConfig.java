package dev.airlock.ociruntime;

import dev.airlock.guest.ContainerMounts;
import dev.airlock.guest.ProcessConfinement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;

/**
 * Reads the parts of a config.json {@code process} that the guest agent applies to the process
 * (rlimits, capabilities, noNewPrivileges, user.umask, user.additionalGids) into a {@link
 * ProcessConfinement}, with the container's compiled seccomp filter. A name the kernel has no
 * interface for (an unknown capability or rlimit) is an error, as the runtime-spec demands.
 */
final class ConfinementConfig {
    /** Capability numbers (linux/capability.h), bit n of a set. */
    private static final List<String> CAPABILITIES = List.of(
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE",
            "NET_BROADCAST",
            "NET_ADMIN",
            "NET_RAW",
            "IPC_LOCK",
            "IPC_OWNER",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_PACCT",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_NICE",
            "SYS_RESOURCE",
            "SYS_TIME",
            "SYS_TTY_CONFIG",
            "MKNOD",
            "LEASE",
            "AUDIT_WRITE",
            "AUDIT_CONTROL",
            "SETFCAP",
            "MAC_OVERRIDE",
            "MAC_ADMIN",
            "SYSLOG",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "AUDIT_READ",
            "PERFMON",
            "BPF",
            "CHECKPOINT_RESTORE");

    /** Resource numbers (asm-generic/resource.h, x86_64). */
    private static final List<String> RLIMITS = List.of(
            "CPU",
            "FSIZE",
            "DATA",
            "STACK",
            "CORE",
            "RSS",
            "NPROC",
            "NOFILE",
            "MEMLOCK",
            "AS",
            "LOCKS",
            "SIGPENDING",
            "MSGQUEUE",
            "NICE",
            "RTPRIO",
            "RTTIME");

    private ConfinementConfig() {}

    /** The confinement of {@code process} ({@code where} prefixes field names in errors). */
    static @Nullable ProcessConfinement read(
            JsonNode p,
            String where,
            byte @Nullable [] seccomp,
            @Nullable String hostname,
            @Nullable ContainerMounts mounts) {
        List<ProcessConfinement.Rlimit> rlimits = rlimits(p.path("rlimits"), where + "rlimits");
        ProcessConfinement.Capabilities caps = capabilities(p.path("capabilities"), where + "capabilities");
        boolean noNewPrivileges = p.path("noNewPrivileges").asBoolean(false);
        JsonNode u = p.path("user");
        Integer umask = null;
        if (u.hasNonNull("umask")) {
            long m = u.get("umask").asLong(-1);
            if (m < 0 || m > 0777) {
                throw new RuntimeError(where + "user.umask " + u.get("umask") + " is not a file mode (0 to 0777)");
            }
            umask = (int) m;
        }
        List<Long> groups = null;
        if (u.has("additionalGids")) {
            groups = new ArrayList<>();
            for (JsonNode g : u.path("additionalGids")) {
                long gid = g.asLong(-1);
                if (!g.isIntegralNumber() || gid < 0 || gid > 0xfffffffeL) {
                    throw new RuntimeError(where + "user.additionalGids entry " + g + " is not a group id");
                }
                groups.add(gid);
            }
            if (groups.size() > ProcessConfinement.MAX_GROUPS) {
                throw new RuntimeError(
                        where + "user.additionalGids has more than " + ProcessConfinement.MAX_GROUPS + " groups");
            }
        }
        if (rlimits.isEmpty()
                && caps == null
                && !noNewPrivileges
                && seccomp == null
                && umask == null
                && groups == null
                && hostname == null
                && mounts == null) {
            return null;
        }
        if (hostname != null && (hostname.isEmpty() || hostname.length() > 64)) {
            throw new RuntimeError("hostname '" + hostname + "' is not 1 to 64 characters");
        }
        return new ProcessConfinement(rlimits, caps, noNewPrivileges, seccomp, umask, groups, hostname, mounts);
    }

    private static List<ProcessConfinement.Rlimit> rlimits(JsonNode list, String where) {
        List<ProcessConfinement.Rlimit> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (JsonNode r : list) {
            String type = r.path("type").asString("");
            int resource = type.startsWith("RLIMIT_") ? RLIMITS.indexOf(type.substring(7)) : -1;
            if (resource < 0) {
                throw new RuntimeError(where + ": '" + type + "' is not a Linux rlimit (RLIMIT_NOFILE, ...)");
            }
            if (!seen.add(type)) {
                throw new RuntimeError(where + ": " + type + " is given twice");
            }
            // uint64 in JSON; 2^64-1 (RLIM_INFINITY) wraps to -1, bit for bit
            long soft = r.path("soft").bigIntegerValue().longValue();
            long hard = r.path("hard").bigIntegerValue().longValue();
            if (Long.compareUnsigned(soft, hard) > 0) {
                throw new RuntimeError(where + ": " + type + " soft limit " + Long.toUnsignedString(soft)
                        + " is above its hard limit " + Long.toUnsignedString(hard));
            }
            out.add(new ProcessConfinement.Rlimit(resource, soft, hard));
        }
        return out;
    }

    private static ProcessConfinement.@Nullable Capabilities capabilities(JsonNode c, String where) {
        if (c.isMissingNode() || c.isNull()) {
            return null;
        }
        if (!c.isObject()) {
            throw new RuntimeError(where + " must be an object");
        }
        List<String> names = List.of("bounding", "effective", "permitted", "inheritable", "ambient");
        long[] sets = new long[names.size()];
        for (String k : c.propertyNames()) {
            int set = names.indexOf(k);
            if (set < 0) {
                throw BundleConfig.refused(where + "." + k, "not a capability set");
            }
            for (JsonNode n : c.get(k)) {
                String name = n.asString("");
                int bit = name.startsWith("CAP_") ? CAPABILITIES.indexOf(name.substring(4)) : -1;
                if (bit < 0) {
                    throw new RuntimeError(where + "." + k + ": '" + name + "' is not a Linux capability");
                }
                sets[set] |= 1L << bit;
            }
        }
        return new ProcessConfinement.Capabilities(sets[0], sets[1], sets[2], sets[3], sets[4]);
    }
}
