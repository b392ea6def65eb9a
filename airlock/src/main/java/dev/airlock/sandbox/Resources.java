package dev.airlock.sandbox;

import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Per-sandbox limits. vCPUs and memory bound the VM; disk is the size of the writable layer;
 * pids caps the guest's process count; timeout is the sandbox's wall-clock lifetime (null: none).
 */
public record Resources(
        int cpus,
        int memoryMiB,
        long diskMiB,
        int pids,
        @Nullable Duration timeout) {
    public static final Resources DEFAULT = new Resources(1, 512, 4096, 4096, null);
    static final int MAX_CPUS = 16;

    public Resources {
        int hostCpus = Runtime.getRuntime().availableProcessors();
        if (cpus < 1 || cpus > Math.min(MAX_CPUS, Math.max(hostCpus, 1) * 4)) {
            throw new SandboxException("impossible --cpus " + cpus + ": use 1 to " + Math.min(MAX_CPUS, hostCpus * 4)
                    + " (this host has " + hostCpus + " CPUs)");
        }
        long hostMiB = hostMemoryMiB();
        if (memoryMiB < 128 || memoryMiB > hostMiB) {
            throw new SandboxException(
                    "impossible --memory " + memoryMiB + "m: use 128m to " + hostMiB + "m (this host's memory)");
        }
        if (diskMiB < 64 || diskMiB > 1024L * 1024) {
            throw new SandboxException("impossible --disk " + diskMiB + "m: use 64m to 1024g");
        }
        if (pids < 16) {
            throw new SandboxException("impossible --pids-limit " + pids + ": at least 16");
        }
        if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
            throw new SandboxException("impossible --timeout " + timeout + ": must be positive");
        }
    }

    static long hostMemoryMiB() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // Fall through: without /proc/meminfo only the lower bound is checked.
        }
        return Long.MAX_VALUE / (1024 * 1024);
    }

    /** Parses Docker-style sizes: 512m, 2g, 1.5g, 1048576k, or plain MiB. */
    public static long parseMiB(String s) {
        String t = s.trim().toLowerCase(java.util.Locale.ROOT);
        double factor = 1;
        if (t.endsWith("b")) {
            t = t.substring(0, t.length() - 1);
        }
        if (t.endsWith("k")) {
            factor = 1.0 / 1024;
        } else if (t.endsWith("m")) {
            factor = 1;
        } else if (t.endsWith("g")) {
            factor = 1024;
        } else if (t.endsWith("t")) {
            factor = 1024 * 1024;
        }
        if (!t.isEmpty() && Character.isLetter(t.charAt(t.length() - 1))) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            double v = Double.parseDouble(t) * factor;
            if (v <= 0 || Double.isNaN(v)) {
                throw new NumberFormatException();
            }
            return (long) Math.ceil(v);
        } catch (NumberFormatException e) {
            throw new SandboxException("invalid size '" + s + "': use a number with k, m or g, e.g. 512m or 2g");
        }
    }

    /** Parses durations: 30s, 5m, 1h, 1500ms, or plain seconds. */
    public static Duration parseDuration(String s) {
        String t = s.trim().toLowerCase(java.util.Locale.ROOT);
        try {
            if (t.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
            }
            char unit = t.isEmpty() ? 's' : t.charAt(t.length() - 1);
            String num = Character.isLetter(unit) ? t.substring(0, t.length() - 1) : t;
            double v = Double.parseDouble(num);
            long millis = (long) (v
                    * switch (unit) {
                        case 'h' -> 3_600_000;
                        case 'm' -> 60_000;
                        case 's' -> 1000;
                        default -> {
                            if (Character.isLetter(unit)) {
                                throw new NumberFormatException();
                            }
                            yield 1000;
                        }
                    });
            return Duration.ofMillis(millis);
        } catch (NumberFormatException e) {
            throw new SandboxException("invalid duration '" + s + "': use e.g. 30s, 5m, 1h or 1500ms");
        }
    }
}
