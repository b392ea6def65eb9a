package dev.airlock.oci;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;

/**
 * A container's cgroup as the host sees it, on the cgroup v1 hierarchies this host uses
 * (memory, cpu, pids). {@code path} is the OCI cgroupsPath, the same below every controller.
 */
public record ContainerCgroup(String path) {
    static final Path ROOT = Path.of("/sys/fs/cgroup");
    static final List<String> CONTROLLERS = List.of("memory", "cpu", "pids");

    /**
     * Containers' cgroups go below {@code <our memory cgroup>/airlock}: the memory we are allowed
     * (a daemon's or a test runner's cgroup) then bounds its containers' memory too, and they
     * are accounted to it. The same relative path is used under every controller.
     */
    public static String parentForThisProcess() {
        String own = "/";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
                String[] f = line.split(":", 3);
                if (f.length == 3 && List.of(f[1].split(",")).contains("memory")) {
                    own = f[2];
                }
            }
        } catch (IOException e) {
            // no /proc/self/cgroup: use the root
        }
        return (own.endsWith("/") ? own : own + "/") + "airlock";
    }

    public Path dir(String controller) {
        return ROOT.resolve(controller).resolve(path.substring(1));
    }

    /** Whether the cgroup still exists under any of the controllers we use. */
    public boolean exists() {
        return CONTROLLERS.stream().anyMatch(c -> Files.isDirectory(dir(c)));
    }

    /** How often the kernel's OOM killer has killed a task in this cgroup. */
    public long oomKills() {
        return field("memory", "memory.oom_control", "oom_kill").orElse(0);
    }

    public OptionalLong memoryLimit() {
        return number("memory", "memory.limit_in_bytes");
    }

    public OptionalLong memoryMaxUsage() {
        return number("memory", "memory.max_usage_in_bytes");
    }

    /** Memory charged to the container now (its processes and their page cache). */
    public OptionalLong memoryUsage() {
        return number("memory", "memory.usage_in_bytes");
    }

    /** CPU time its tasks have used, in nanoseconds. */
    public OptionalLong cpuNanos() {
        return number("cpuacct", "cpuacct.usage");
    }

    public OptionalLong pidsMax() {
        return number("pids", "pids.max");
    }

    public OptionalLong pidsCurrent() {
        return number("pids", "pids.current");
    }

    /** How often a fork was refused because of pids.max. */
    public long pidsLimitHits() {
        return field("pids", "pids.events", "max").orElse(0);
    }

    public OptionalLong cpuQuotaMicros() {
        return number("cpu", "cpu.cfs_quota_us");
    }

    /** Host pids of every task in the cgroup (memory hierarchy). */
    public List<Long> tasks() {
        try {
            return Files.readAllLines(dir("memory").resolve("cgroup.procs")).stream()
                    .filter(s -> !s.isBlank())
                    .map(Long::parseLong)
                    .toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private OptionalLong number(String controller, String file) {
        try {
            String s = Files.readString(dir(controller).resolve(file)).strip();
            return s.equals("max") ? OptionalLong.of(Long.MAX_VALUE) : OptionalLong.of(Long.parseLong(s));
        } catch (IOException | NumberFormatException e) {
            return OptionalLong.empty();
        }
    }

    private OptionalLong field(String controller, String file, String key) {
        try {
            for (String line : Files.readAllLines(dir(controller).resolve(file))) {
                String[] kv = line.strip().split("\\s+");
                if (kv.length == 2 && kv[0].equals(key)) {
                    return OptionalLong.of(Long.parseLong(kv[1]));
                }
            }
        } catch (IOException | NumberFormatException e) {
            // absent: report nothing
        }
        return OptionalLong.empty();
    }
}
