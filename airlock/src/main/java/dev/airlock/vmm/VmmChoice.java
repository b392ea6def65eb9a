package dev.airlock.vmm;

import dev.airlock.guest.GuestChannel;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Picks the QEMU binary by measurement: Debian ships a microvm-only build
 * ({@code qemu-system-x86_64-microvm}, fewer devices, a smaller binary) beside the full
 * {@value QemuMicrovm#FULL}. Both boot the Airlock guest to its agent a few times, alternating,
 * and the one with the lower median start-to-agent-ready time is used; a binary that is missing or
 * cannot run the guest (Debian's microvm build has no TCG, so on a host without usable KVM it
 * cannot) is out, and the full binary is the fallback. VMs with a NIC always run the full binary:
 * the microvm build has no user-mode networking. The decision is cached until either binary
 * changes.
 */
public final class VmmChoice {
    public static final String MICROVM = QemuMicrovm.FULL + "-microvm";
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final String FILE = "vmm-choice.json";
    private static final int ROUNDS = 3;

    /** The binary and why, in words for {@code airlock doctor}. */
    public record Decision(String binary, String reason) {}

    private VmmChoice() {}

    /** The decision made earlier on this host, if neither binary changed since. */
    public static Optional<Decision> cached(Path cacheDir) {
        Path f = cacheDir.resolve(FILE);
        try {
            JsonNode n = JSON.readTree(Files.readString(f));
            if (!n.path("stamp").asString().equals(stamp())) {
                return Optional.empty();
            }
            return Optional.of(
                    new Decision(n.path("binary").asString(), n.path("reason").asString()));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Size and time of both binaries: a package upgrade changes them, and the choice is made again. */
    private static String stamp() {
        StringBuilder s = new StringBuilder();
        for (String b : List.of(MICROVM, QemuMicrovm.FULL)) {
            Optional<Path> p = onPath(b);
            s.append(b).append('=');
            try {
                if (p.isPresent()) {
                    s.append(Files.size(p.get()))
                            .append(':')
                            .append(Files.getLastModifiedTime(p.get()).toMillis());
                }
            } catch (IOException e) {
                s.append('?');
            }
            s.append(';');
        }
        return s.toString();
    }

    static Optional<Path> onPath(String name) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        return Arrays.stream(path.split(":"))
                .filter(d -> !d.isEmpty())
                .map(d -> Path.of(d, name))
                .filter(Files::isExecutable)
                .findFirst();
    }

    /**
     * Measures and caches. {@code image} is the base image the guest mounts; {@code work} a
     * scratch directory (a layer and the VMs' files go there, removed after).
     */
    public static Decision decide(
            Path cacheDir, Path kernel, Path initrd, Path image, Accel accel, Path work, Progress progress) {
        Optional<Decision> known = cached(cacheDir);
        if (known.isPresent()) {
            return known.get();
        }
        Decision d = measure(kernel, initrd, image, accel, work, progress);
        Map<String, String> out = new LinkedHashMap<>();
        out.put("binary", d.binary());
        out.put("reason", d.reason());
        out.put("stamp", stamp());
        HostFiles.writeAtomically(cacheDir.resolve(FILE), JSON.writeValueAsBytes(out));
        return d;
    }

    private static Decision measure(Path kernel, Path initrd, Path image, Accel accel, Path work, Progress progress) {
        if (onPath(MICROVM).isEmpty()) {
            return new Decision(QemuMicrovm.FULL, "full binary: there is no " + MICROVM + " on this host");
        }
        HostCommand.Result accels = HostCommand.run(List.of(MICROVM, "-accel", "help"), null, null);
        if (!accels.ok() || accels.output().lines().noneMatch(l -> l.strip().equals(accel.flag()))) {
            return new Decision(
                    QemuMicrovm.FULL,
                    "full binary: " + MICROVM + " cannot run " + accel.flag().toUpperCase(java.util.Locale.ROOT)
                            + " guests (Debian builds it for KVM only)");
        }
        progress.step("timing " + MICROVM + " against " + QemuMicrovm.FULL + " (QEMU start to agent ready, " + ROUNDS
                + " boots each)");
        List<Double> micro = new ArrayList<>();
        List<Double> full = new ArrayList<>();
        try {
            for (int i = 0; i < ROUNDS; i++) {
                micro.add(bootMillis(MICROVM, kernel, initrd, image, accel, work.resolve("m" + i)));
                full.add(bootMillis(QemuMicrovm.FULL, kernel, initrd, image, accel, work.resolve("f" + i)));
            }
        } catch (RuntimeException | IOException e) {
            return new Decision(
                    QemuMicrovm.FULL, "full binary: " + MICROVM + " did not boot the guest (" + e.getMessage() + ")");
        } finally {
            HostFiles.deleteTree(work);
        }
        double m = median(micro);
        double f = median(full);
        String figures = String.format(
                java.util.Locale.ROOT,
                "start to agent ready, median of %d: %s %.0f ms, %s %.0f ms",
                ROUNDS,
                MICROVM,
                m,
                QemuMicrovm.FULL,
                f);
        return m < f
                ? new Decision(MICROVM, "microvm-only binary, faster to start (" + figures + ")")
                : new Decision(QemuMicrovm.FULL, "full binary, not slower to start (" + figures + ")");
    }

    private static double bootMillis(String binary, Path kernel, Path initrd, Path image, Accel accel, Path dir)
            throws IOException {
        Files.createDirectories(dir);
        Path layer = dir.resolve("layer.ext4");
        try (RandomAccessFile f = new RandomAccessFile(layer.toFile(), "rw")) {
            f.setLength(64L << 20);
        }
        HostCommand.check(List.of("mkfs.ext4", "-q", "-F", layer.toString()));
        VmSpec spec = new VmSpec(
                kernel,
                initrd,
                "console=ttyS0 reboot=t panic=-1 pci=off quiet airlock.root=/dev/vda airlock.layer=/dev/vdb"
                        + " airlock.hostname=choice",
                List.of(new VmSpec.Disk(image, true), new VmSpec.Disk(layer, false)),
                1,
                256,
                accel,
                dir,
                dir);
        long t0 = System.nanoTime();
        RunningVm vm = new QemuMicrovm(binary).launch(spec);
        try (GuestChannel ch = GuestChannel.connect(spec.agentSocket(), Duration.ofSeconds(120))) {
            double ms = (System.nanoTime() - t0) / 1e6;
            ch.ping(Duration.ofSeconds(10));
            return ms;
        } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
            throw new VmmException("the guest did not answer: " + e.getMessage(), e);
        } finally {
            vm.kill();
            HostFiles.deleteTree(dir);
        }
    }

    private static double median(List<Double> xs) {
        List<Double> s = xs.stream().sorted().toList();
        return s.get(s.size() / 2);
    }
}
