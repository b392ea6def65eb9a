package dev.airlock.ociruntime;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The config.json {@code airlock-runtime spec} writes: the fields and values of runc's default
 * spec (a shell in {@code rootfs} as root, the kernel file systems, new namespaces, runc's masked
 * and read-only paths), except a writable root and no terminal, so that it runs here unchanged.
 */
final class DefaultSpec {
    private static final List<String> CAPABILITIES = List.of("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE");

    private DefaultSpec() {}

    static Map<String, Object> config() {
        Map<String, Object> process = new LinkedHashMap<>();
        process.put("terminal", false);
        process.put("user", Map.of("uid", 0, "gid", 0));
        process.put("args", List.of("sh"));
        process.put("env", List.of("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"));
        process.put("cwd", "/");
        process.put(
                "capabilities", Map.of("bounding", CAPABILITIES, "effective", CAPABILITIES, "permitted", CAPABILITIES));
        process.put("rlimits", List.of(Map.of("type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024)));
        process.put("noNewPrivileges", true);

        Map<String, Object> linux = new LinkedHashMap<>();
        linux.put("resources", Map.of("devices", List.of(Map.of("allow", false, "access", "rwm"))));
        linux.put(
                "namespaces",
                List.of("pid", "network", "ipc", "uts", "mount", "cgroup").stream()
                        .map(t -> Map.of("type", t))
                        .toList());
        linux.put(
                "maskedPaths",
                List.of(
                        "/proc/acpi",
                        "/proc/asound",
                        "/proc/kcore",
                        "/proc/keys",
                        "/proc/latency_stats",
                        "/proc/timer_list",
                        "/proc/timer_stats",
                        "/proc/sched_debug",
                        "/sys/firmware",
                        "/proc/scsi"));
        linux.put("readonlyPaths", List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"));

        Map<String, Object> c = new LinkedHashMap<>();
        c.put("ociVersion", AirlockRuntime.SPEC_VERSION);
        c.put("process", process);
        c.put("root", Map.of("path", "rootfs", "readonly", false));
        c.put("hostname", "airlock");
        c.put(
                "mounts",
                List.of(
                        mount("/proc", "proc", "proc"),
                        mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
                        mount(
                                "/dev/pts",
                                "devpts",
                                "devpts",
                                "nosuid",
                                "noexec",
                                "newinstance",
                                "ptmxmode=0666",
                                "mode=0620",
                                "gid=5"),
                        mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
                        mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
                        mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
                        mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro")));
        c.put("linux", linux);
        return c;
    }

    private static Map<String, Object> mount(String destination, String type, String source, String... options) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("destination", destination);
        m.put("type", type);
        m.put("source", source);
        if (options.length > 0) {
            m.put("options", List.of(options));
        }
        return m;
    }
}
