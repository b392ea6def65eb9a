package dev.airlock.oci;

import dev.airlock.host.HostFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The OCI runtime-spec {@code config.json} of a sandbox container.
 *
 * <p>The process is the Airlock agent as PID 1 of the container's PID namespace, serving the
 * guest protocol on {@value #AGENT_DIR}/{@value #AGENT_SOCKET}, a directory bind-mounted from the
 * host. Isolation: new mount, PID, IPC, UTS, network (loopback only) and cgroup namespaces; an
 * overlay root over the read-only image (with {@code --network nat}, the namespace gets a tap0 from
 * {@link Slirp4netns}); a memory, CPU and pids limited cgroup; a seccomp
 * profile that refuses what an agent never needs; no_new_privs; a small capability set; masked
 * and read-only kernel interfaces; a /dev with only the harmless character devices; with {@link
 * ContainerSpec#ids()}, a user namespace in which container root is an unprivileged host uid.
 */
public final class OciConfig {
    /** Where the host's socket directory appears in the container. */
    public static final String AGENT_DIR = "/run/airlock";

    public static final String AGENT_SOCKET = "agent.sock";

    /** A nat container's resolv.conf, in its sandbox directory. */
    static final String RESOLV_CONF = "resolv.conf";

    /** Where the agent binary is bind-mounted, read-only. */
    public static final String AGENT_PATH = "/run/airlock-init";

    private static final JsonMapper JSON =
            JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    private static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /**
     * Enough for an agent that runs commands as root or as another user and manages files: no
     * CAP_SYS_ADMIN (so no mount, no namespace tricks), no CAP_NET_ADMIN/RAW, no CAP_SYS_PTRACE,
     * no CAP_MKNOD, no CAP_SYS_MODULE/TIME/BOOT, no CAP_AUDIT_*, no CAP_SETFCAP.
     */
    static final List<String> CAPABILITIES = List.of(
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_NET_BIND_SERVICE");

    /** Refused with EPERM: kernel keyrings, tracing, modules, kexec, BPF, mounting and friends. */
    static final List<String> DENIED_SYSCALLS = List.of(
            "acct",
            "add_key",
            "adjtimex",
            "bpf",
            "clock_adjtime",
            "clock_settime",
            "delete_module",
            "finit_module",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "init_module",
            "io_uring_enter",
            "io_uring_register",
            "io_uring_setup",
            "ioperm",
            "iopl",
            "kcmp",
            "kexec_file_load",
            "kexec_load",
            "keyctl",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_by_handle_at",
            "open_tree",
            "perf_event_open",
            "pivot_root",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
            "quotactl",
            "reboot",
            "request_key",
            "setns",
            "settimeofday",
            "swapoff",
            "swapon",
            "syslog",
            "umount2",
            "uselib",
            "userfaultfd",
            "vhangup");

    private static final long CLONE_NEWUSER = 0x10000000L;
    private static final int EPERM = 1;
    private static final int ENOSYS = 38;

    static final List<String> MASKED_PATHS = List.of(
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap",
            "/sys/kernel/debug");

    static final List<String> READONLY_PATHS =
            List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger");

    /** {path, major, minor}: the only device nodes in the container's /dev. */
    private static final List<Object[]> DEVICES = List.of(
            new Object[] {"/dev/null", 1, 3},
            new Object[] {"/dev/zero", 1, 5},
            new Object[] {"/dev/full", 1, 7},
            new Object[] {"/dev/random", 1, 8},
            new Object[] {"/dev/urandom", 1, 9},
            new Object[] {"/dev/tty", 5, 0});

    private static final long CPU_PERIOD_US = 100_000;

    private OciConfig() {}

    /** The agent's config. {@code cgroupsPath} is the runtime's cgroup path for the container. */
    public static Map<String, Object> forAgent(ContainerSpec spec, Path rootfs, String cgroupsPath) {
        List<String> args = List.of(AGENT_PATH, "--serve-unix", AGENT_DIR + "/" + AGENT_SOCKET);
        return build(spec, rootfs, cgroupsPath, args);
    }

    /** The same sandbox with another process, e.g. {@code /bin/true} for a baseline. */
    public static Map<String, Object> build(ContainerSpec spec, Path rootfs, String cgroupsPath, List<String> args) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("ociVersion", "1.0.2");
        root.put("process", process(spec, args));
        // In a user namespace the runtime reaches the root as container root, who may not pass
        // through the owner-only directories above the bundle: relative to the bundle, which the
        // runtime makes its working directory before it enters the namespace, it need not.
        String rootPath = spec.ids() != null && rootfs.getParent() != null
                ? rootfs.getParent().relativize(rootfs).toString()
                : rootfs.toString();
        root.put("root", Map.of("path", rootPath, "readonly", false));
        if (!spec.joined().containsKey("uts")) {
            // in a joined UTS namespace the hostname is its owner's (a pod's), not this container's to set
            root.put("hostname", spec.hostname());
        }
        root.put("mounts", mounts(spec));
        root.put("linux", linux(spec, cgroupsPath));
        return root;
    }

    public static void write(Map<String, Object> config, Path bundle) {
        try {
            Files.createDirectories(bundle);
            // The sandbox's environment is in it: the owner's alone.
            Path tmp = HostFiles.ownerOnlyFile(bundle.resolve("config.json.tmp"));
            Files.writeString(tmp, JSON.writeValueAsString(config));
            Files.move(tmp, bundle.resolve("config.json"), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the OCI config in " + bundle, e);
        }
    }

    private static Map<String, Object> process(ContainerSpec spec, List<String> args) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("terminal", false);
        p.put("user", Map.of("uid", 0, "gid", 0));
        p.put("args", args);
        List<String> env = new ArrayList<>();
        env.add("PATH=" + DEFAULT_PATH);
        env.add("HOSTNAME=" + spec.hostname());
        spec.env().forEach((k, v) -> env.add(k + "=" + v));
        p.put("env", env);
        p.put("cwd", "/");
        List<String> held = new ArrayList<>(CAPABILITIES);
        held.addAll(spec.agentCapabilities());
        Map<String, Object> caps = new LinkedHashMap<>();
        caps.put("bounding", held);
        caps.put("effective", held);
        caps.put("permitted", held);
        caps.put("inheritable", List.of());
        caps.put("ambient", List.of());
        p.put("capabilities", caps);
        // The host's hard limit is 20000 and cannot be raised (no CAP_SYS_RESOURCE); lower is fine.
        p.put(
                "rlimits",
                List.of(
                        Map.of("type", "RLIMIT_NOFILE", "soft", 4096, "hard", 4096),
                        Map.of("type", "RLIMIT_CORE", "soft", 0, "hard", 0)));
        p.put("noNewPrivileges", true);
        return p;
    }

    private static List<Map<String, Object>> mounts(ContainerSpec spec) {
        List<Map<String, Object>> m = new ArrayList<>();
        m.add(mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"));
        m.add(mount("/dev", "tmpfs", "tmpfs", "nosuid", "noexec", "strictatime", "mode=755", "size=65536k"));
        m.add(mount(
                "/dev/pts",
                "devpts",
                "devpts",
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5"));
        // tmpfs pages are charged to the container's memory cgroup, so this size is a cap, not a gift
        m.add(mount("/dev/shm", "shm", "tmpfs", "nosuid", "nodev", "mode=1777", "size=" + spec.memoryMiB() + "m"));
        m.add(mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"));
        m.add(mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"));
        m.add(mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"));
        m.add(mount("/run", "tmpfs", "tmpfs", "nosuid", "nodev", "mode=755", "size=65536k"));
        m.add(mount(AGENT_DIR, spec.socketDir().toString(), "none", "bind", "nosuid", "nodev", "noexec"));
        m.add(mount(AGENT_PATH, spec.agent().toString(), "none", "bind", "ro", "nosuid", "nodev"));
        if (spec.network() instanceof ContainerSpec.Network.Nat
                || spec.network() instanceof ContainerSpec.Network.NatNamespace) {
            // The image's resolv.conf names the build host's resolver; slirp4netns answers DNS at 10.0.2.3.
            m.add(mount(
                    "/etc/resolv.conf",
                    spec.sandboxDir().resolve(RESOLV_CONF).toString(),
                    "none",
                    "bind",
                    "ro",
                    "nosuid",
                    "nodev",
                    "noexec"));
        }
        return m;
    }

    private static Map<String, Object> mount(String dest, String source, String type, String... options) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("destination", dest);
        m.put("type", type);
        m.put("source", source);
        m.put("options", List.of(options));
        return m;
    }

    private static Map<String, Object> linux(ContainerSpec spec, String cgroupsPath) {
        Map<String, Object> l = new LinkedHashMap<>();
        List<Map<String, Object>> ns = new ArrayList<>();
        ContainerIds ids = spec.ids();
        if (ids != null) {
            // First, so the other namespaces belong to it: root in the container has its
            // capabilities over them and nothing on the host (docs/security.md).
            ns.add(Map.of("type", "user"));
            l.put("uidMappings", List.of(ContainerIds.mapping(ids.uid())));
            l.put("gidMappings", List.of(ContainerIds.mapping(ids.gid())));
        }
        for (String t : List.of("pid", "network", "ipc", "uts", "mount", "cgroup")) {
            String path = spec.joined().get(t);
            if (path != null) {
                ns.add(Map.of("type", t, "path", path));
            } else if (t.equals("network") && spec.network() instanceof ContainerSpec.Network.NatNamespace joined) {
                ns.add(Map.of("type", t, "path", joined.netns().toString()));
            } else {
                ns.add(Map.of("type", t));
            }
        }
        l.put("namespaces", ns);
        List<Map<String, Object>> devices = new ArrayList<>();
        for (Object[] d : DEVICES) {
            Map<String, Object> dev = new LinkedHashMap<>();
            dev.put("path", d[0]);
            dev.put("type", "c");
            dev.put("major", d[1]);
            dev.put("minor", d[2]);
            dev.put("fileMode", 0666);
            dev.put("uid", 0);
            dev.put("gid", 0);
            devices.add(dev);
        }
        l.put("devices", devices);
        l.put("cgroupsPath", cgroupsPath);
        l.put("resources", resources(spec));
        l.put("seccomp", seccomp());
        l.put("maskedPaths", MASKED_PATHS);
        l.put("readonlyPaths", READONLY_PATHS);
        l.put("rootfsPropagation", "rprivate");
        return l;
    }

    private static Map<String, Object> resources(ContainerSpec spec) {
        Map<String, Object> r = new LinkedHashMap<>();
        List<Map<String, Object>> dev = new ArrayList<>();
        dev.add(Map.of("allow", false, "access", "rwm"));
        for (Object[] d : DEVICES) {
            dev.add(Map.of("allow", true, "type", "c", "major", d[1], "minor", d[2], "access", "rwm"));
        }
        dev.add(Map.of("allow", true, "type", "c", "major", 5, "minor", 2, "access", "rwm")); // ptmx
        dev.add(Map.of("allow", true, "type", "c", "major", 136, "access", "rwm")); // pts/*
        r.put("devices", dev);
        r.put("memory", Map.of("limit", (long) spec.memoryMiB() << 20));
        r.put("cpu", Map.of("quota", Math.round(spec.cpus() * CPU_PERIOD_US), "period", CPU_PERIOD_US));
        r.put("pids", Map.of("limit", spec.pids()));
        return r;
    }

    private static Map<String, Object> seccomp() {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("defaultAction", "SCMP_ACT_ALLOW");
        s.put("architectures", List.of("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"));
        List<Map<String, Object>> rules = new ArrayList<>();
        rules.add(Map.of("names", DENIED_SYSCALLS, "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM));
        // New user namespaces would hand an unprivileged process a full capability set over
        // fresh namespaces (a large kernel attack surface). clone3 passes its flags in memory,
        // where seccomp cannot look: answer ENOSYS so libc falls back to clone.
        Map<String, Object> newUser =
                Map.of("index", 0, "value", CLONE_NEWUSER, "valueTwo", CLONE_NEWUSER, "op", "SCMP_CMP_MASKED_EQ");
        rules.add(Map.of(
                "names",
                List.of("clone", "unshare"),
                "action",
                "SCMP_ACT_ERRNO",
                "errnoRet",
                EPERM,
                "args",
                List.of(newUser)));
        rules.add(Map.of("names", List.of("clone3"), "action", "SCMP_ACT_ERRNO", "errnoRet", ENOSYS));
        s.put("syscalls", rules);
        return s;
    }
}
