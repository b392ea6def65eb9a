package dev.airlock.gvisor;

import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.oci.ContainerException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Finds the gVisor platform (how the Sentry runs and intercepts the sandbox's code) that works on
 * this host by running each: {@code runsc do true} on it. KVM only where KVM really runs gVisor's
 * guest (on a PVM host /dev/kvm exists but the KVM platform hangs), else systrap (seccomp traps,
 * no virtualization needed), else ptrace. The decision is cached per runsc binary, host kernel and
 * /dev/kvm, so only the first sandbox on a host pays for it.
 */
final class PlatformProbe {
    /** In order of preference. */
    static final List<String> PLATFORMS = List.of("kvm", "systrap", "ptrace");

    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** A working {@code runsc do true} takes 0.15-0.5 s here; one that hangs (kvm on PVM) never ends. */
    private static final long LIMIT_MS = 5_000;

    /**
     * The platform sandboxes use, and why.
     *
     * @param platform kvm, systrap or ptrace
     * @param startMillis the wall time of {@code runsc do true} on it
     * @param reason in words: which were tried and what failed
     */
    record Decision(String platform, long startMillis, String reason) {}

    private final Path cacheDir;
    private final Path runsc;

    PlatformProbe(Path cacheDir, Path runsc) {
        this.cacheDir = cacheDir;
        this.runsc = runsc;
    }

    /**
     * The platform to use. {@code requested} (AIRLOCK_GVISOR_PLATFORM) is tried first; when it
     * does not work here the next that does is used and the reason says so.
     *
     * @throws ContainerException when runsc starts on no platform, with each one's error
     */
    Decision decide(@Nullable String requested, Progress progress) {
        if (requested != null && !PLATFORMS.contains(requested)) {
            throw new ContainerException("AIRLOCK_GVISOR_PLATFORM=" + requested + " is not a gVisor platform: use "
                    + String.join(", ", PLATFORMS));
        }
        Path cacheFile = cacheDir.resolve("gvisor-platform-" + fingerprint(requested) + ".json");
        if (Files.isRegularFile(cacheFile)) {
            try {
                JsonNode n = JSON.readTree(cacheFile.toFile());
                return new Decision(
                        n.path("platform").asString(),
                        n.path("startMillis").asLong(),
                        n.path("reason").asString());
            } catch (RuntimeException e) {
                // a damaged cache entry is a miss: probe again
            }
        }
        Decision d = probe(requested, progress);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("platform", d.platform());
        out.put("startMillis", d.startMillis());
        out.put("reason", d.reason());
        HostFiles.writeAtomically(cacheFile, JSON.writeValueAsBytes(out));
        return d;
    }

    private Decision probe(@Nullable String requested, Progress progress) {
        List<String> order = new ArrayList<>();
        if (requested != null) {
            order.add(requested);
        }
        for (String p : PLATFORMS) {
            if (!order.contains(p) && (!p.equals("kvm") || kvmUsable())) {
                order.add(p);
            }
        }
        progress.step("checking which gVisor platform runs here (runsc do true on " + String.join(", ", order) + ")");
        List<String> failed = new ArrayList<>();
        for (String platform : order) {
            Attempt a = attempt(platform);
            if (a.error() == null) {
                String why = "runsc do true works on " + platform + " (" + a.millis() + " ms)";
                if (!failed.isEmpty()) {
                    why += "; " + String.join("; ", failed);
                }
                if (requested != null && !requested.equals(platform)) {
                    progress.step("warning: gVisor's " + requested + " platform does not work here; using " + platform);
                    why = "AIRLOCK_GVISOR_PLATFORM=" + requested + " does not work here, falling back to " + platform
                            + ": " + why;
                }
                return new Decision(platform, a.millis(), why);
            }
            failed.add(platform + " does not: " + a.error());
        }
        throw new ContainerException("runsc (" + runsc + ") cannot start a sandbox here: " + String.join("; ", failed));
    }

    private static boolean kvmUsable() {
        Path kvm = Path.of("/dev/kvm");
        return Files.isReadable(kvm) && Files.isWritable(kvm);
    }

    private record Attempt(long millis, @Nullable String error) {}

    /** {@code runsc do true} on one platform, its own state directory, no network, no cgroups. */
    private Attempt attempt(String platform) {
        Path state;
        Path log;
        try {
            state = Files.createTempDirectory("airlock-runsc-probe");
            log = state.resolve("out.log");
        } catch (IOException e) {
            throw new ContainerException("cannot create a directory for the gVisor platform check", e);
        }
        try {
            ProcessBuilder pb = new ProcessBuilder(
                            runsc.toString(),
                            "--root",
                            state.toString(),
                            "--platform=" + platform,
                            "--network=none",
                            "--ignore-cgroups",
                            "do",
                            "true")
                    .redirectInput(
                            ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            long t0 = System.nanoTime();
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                return new Attempt(0, "cannot run " + runsc + " (" + e.getMessage() + ")");
            }
            boolean done;
            try {
                done = p.waitFor(LIMIT_MS, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                done = false;
            }
            long millis = (System.nanoTime() - t0) / 1_000_000;
            if (!done) {
                // runsc do leaves a sandbox and a gofer process behind when it is killed
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                return new Attempt(millis, "no answer within " + LIMIT_MS / 1000 + " s");
            }
            if (p.exitValue() != 0) {
                return new Attempt(millis, "exit " + p.exitValue() + ": " + lastLine(log));
            }
            return new Attempt(millis, null);
        } finally {
            HostFiles.deleteTree(state);
        }
    }

    private static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8).stream()
                    .map(String::strip)
                    .filter(l -> !l.isEmpty())
                    .toList();
            String last = lines.isEmpty() ? "(no output)" : lines.getLast();
            return last.length() > 300 ? last.substring(0, 300) : last;
        } catch (IOException e) {
            return "(no output)";
        }
    }

    /** What the decision depends on: the runsc binary, the host kernel, /dev/kvm and the request. */
    private String fingerprint(@Nullable String requested) {
        String binary;
        try {
            binary = runsc.toRealPath() + " " + Files.size(runsc) + " " + Files.getLastModifiedTime(runsc);
        } catch (IOException e) {
            binary = runsc.toString();
        }
        String kernel;
        try {
            kernel = Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
        } catch (IOException e) {
            kernel = "?";
        }
        return Hashing.sha256(binary + "\n" + kernel + "\n" + kvmUsable() + "\n" + requested)
                .substring(0, 16);
    }
}
