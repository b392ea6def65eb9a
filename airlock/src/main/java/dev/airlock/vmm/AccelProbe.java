package dev.airlock.vmm;

import dev.airlock.host.Hashing;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Decides KVM or TCG by booting the real guest kernel under KVM, not by trusting /dev/kvm: on a
 * PVM host the device exists and simple real-mode code runs, yet a standard Linux guest stops
 * with "KVM internal error". The decision is cached per (kernel, QEMU, host kernel, device).
 */
public final class AccelProbe {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final String READY = "airlock-init: ready";
    private static final Duration BOOT_LIMIT = Duration.ofSeconds(20);

    /** What was decided and why, in words a user can act on. */
    public record Decision(Accel accel, String reason, boolean cached) {}

    private final Path cacheDir;
    private final QemuMicrovm qemu;

    public AccelProbe(Path cacheDir, QemuMicrovm qemu) {
        this.cacheDir = cacheDir;
        this.qemu = qemu;
    }

    public Decision decide(Path kernel, String kernelKey, Path initrd, Progress progress) {
        Path cacheFile = cacheDir.resolve("accel-" + fingerprint(kernelKey) + ".json");
        if (Files.isRegularFile(cacheFile)) {
            try {
                JsonNode n = JSON.readTree(cacheFile.toFile());
                return new Decision(
                        Accel.parse(n.path("accel").asString()),
                        n.path("reason").asString(),
                        true);
            } catch (RuntimeException e) {
                // A damaged cache entry is just a cache miss: probe again.
            }
        }
        Decision d = probe(kernel, initrd, progress);
        HostFiles.writeAtomically(
                cacheFile, JSON.writeValueAsBytes(Map.of("accel", d.accel().flag(), "reason", d.reason())));
        return d;
    }

    private Decision probe(Path kernel, Path initrd, Progress progress) {
        Path dev = Path.of("/dev/kvm");
        if (!Files.exists(dev)) {
            return new Decision(
                    Accel.TCG,
                    "no /dev/kvm on this host: using software emulation (TCG), which is"
                            + " much slower; enable virtualization (VT-x/AMD-V) and load kvm_intel/kvm_amd for KVM",
                    false);
        }
        if (!Files.isReadable(dev) || !Files.isWritable(dev)) {
            return new Decision(
                    Accel.TCG,
                    "/dev/kvm exists but this user cannot open it: using software emulation"
                            + " (TCG); add the user to the 'kvm' group for KVM",
                    false);
        }
        progress.step("checking that a guest really runs under KVM (boot test)");
        Path dir;
        try {
            dir = Files.createTempDirectory("airlock-kvm-probe");
        } catch (IOException e) {
            throw new VmmException("cannot create a temporary directory for the KVM boot test", e);
        }
        try {
            VmSpec spec = new VmSpec(
                    kernel, initrd, "console=ttyS0 reboot=t panic=-1 pci=off", List.of(), 1, 256, Accel.KVM, dir, dir);
            RunningVm vm;
            try {
                vm = qemu.launch(spec);
            } catch (VmmException e) {
                return tcg("QEMU could not start a KVM guest: " + firstLine(String.valueOf(e.getMessage())));
            }
            try {
                Optional<String> failure = awaitBoot(spec, vm);
                if (failure.isEmpty()) {
                    return new Decision(Accel.KVM, "KVM runs the Airlock guest kernel (boot test passed)", false);
                }
                return new Decision(
                        Accel.TCG,
                        "/dev/kvm is present but a Linux guest does not run under it ("
                                + failure.get() + "); using software emulation (TCG). On PVM hosts (nested, paravirtual"
                                + " KVM) this is expected: guests there need a PVM-patched kernel",
                        false);
            } finally {
                vm.kill();
            }
        } finally {
            HostFiles.deleteTree(dir);
        }
    }

    /**
     * Whether KVM will run a guest here, predicted without a guest kernel (before setup has
     * built one): no usable /dev/kvm certainly means no; PVM's kvm module (paravirtual nested
     * KVM) runs only PVM-patched guests, so no; otherwise probably yes, which the boot test
     * confirms once the kernel is built.
     */
    public static Decision predict() {
        Path dev = Path.of("/dev/kvm");
        if (!Files.exists(dev)) {
            return new Decision(Accel.TCG, "no /dev/kvm on this host", false);
        }
        if (!Files.isReadable(dev) || !Files.isWritable(dev)) {
            return new Decision(Accel.TCG, "/dev/kvm exists but this user cannot open it", false);
        }
        try {
            if (Files.readString(Path.of("/proc/modules")).contains("kvm_pvm ")) {
                return new Decision(
                        Accel.TCG,
                        "/dev/kvm is PVM (module kvm_pvm, paravirtual nested KVM), whose guests need a"
                                + " PVM-patched kernel (predicted; the boot test confirms it once the kernel is built)",
                        false);
            }
        } catch (IOException e) {
            // no /proc/modules: nothing to go by but the device
        }
        return new Decision(
                Accel.KVM, "/dev/kvm is usable (predicted; the boot test confirms it once the kernel is built)", false);
    }

    /**
     * How long the guest kernel takes from QEMU's launch to the agent's ready line under
     * {@code accel}, measured once per (kernel, QEMU, host) and cached; -1 when it did not boot.
     */
    public long bootMillis(Path kernel, String kernelKey, Path initrd, Accel accel, Progress progress) {
        Path cacheFile = cacheDir.resolve("boot-" + fingerprint(kernelKey) + "-" + accel.flag() + ".json");
        if (Files.isRegularFile(cacheFile)) {
            try {
                return JSON.readTree(cacheFile.toFile()).path("millis").asLong(-1);
            } catch (RuntimeException e) {
                // measure again
            }
        }
        progress.step("timing a guest boot under " + accel.flag());
        Path dir;
        try {
            dir = Files.createTempDirectory("airlock-boot-time");
        } catch (IOException e) {
            throw new VmmException("cannot create a temporary directory for the boot timing", e);
        }
        long millis = -1;
        try {
            VmSpec spec = new VmSpec(
                    kernel, initrd, "console=ttyS0 reboot=t panic=-1 pci=off", List.of(), 1, 256, accel, dir, dir);
            long t0 = System.nanoTime();
            RunningVm vm = qemu.launch(spec);
            try {
                if (awaitBoot(spec, vm, Duration.ofSeconds(60)).isEmpty()) {
                    millis = (System.nanoTime() - t0) / 1_000_000;
                }
            } finally {
                vm.kill();
            }
        } catch (VmmException e) {
            progress.step("warning: the guest did not boot for the timing: " + e.getMessage());
        } finally {
            HostFiles.deleteTree(dir);
        }
        if (millis >= 0) {
            HostFiles.writeAtomically(cacheFile, JSON.writeValueAsBytes(Map.of("millis", millis)));
        }
        return millis;
    }

    private static Decision tcg(String failure) {
        return new Decision(
                Accel.TCG,
                "/dev/kvm is present but a Linux guest does not run under it (" + failure
                        + "); using software emulation (TCG), which is correct but slower. On PVM hosts (paravirtual"
                        + " nested KVM) this is expected: their guests need a PVM-patched kernel",
                false);
    }

    private static String firstLine(String s) {
        return s.lines()
                .map(String::strip)
                .filter(l -> !l.isEmpty())
                .findFirst()
                .orElse(s)
                .replace("QEMU failed to start (exit 1): ", "");
    }

    /** Empty when the agent came up; otherwise why the guest did not. */
    private static Optional<String> awaitBoot(VmSpec spec, RunningVm vm) {
        return awaitBoot(spec, vm, BOOT_LIMIT);
    }

    private static Optional<String> awaitBoot(VmSpec spec, RunningVm vm, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (System.nanoTime() < deadline) {
            if (console(spec).contains(READY)) {
                return Optional.empty();
            }
            if (!vm.isAlive()) {
                return Optional.of("QEMU exited during boot");
            }
            try (Qmp q = Qmp.connect(spec.controlSocket())) {
                String status =
                        q.execute("query-status", Map.of()).path("status").asString();
                if (status.equals("internal-error") || status.equals("guest-panicked") || status.equals("shutdown")) {
                    return Optional.of("the VM stopped with status '" + status + "'");
                }
            } catch (VmmException e) {
                return Optional.of("QEMU's control socket failed: " + e.getMessage());
            }
            vm.awaitExit(Duration.ofMillis(100));
        }
        return Optional.of("the guest did not reach its init within " + limit.toSeconds() + " s");
    }

    private static String console(VmSpec spec) {
        try {
            return Files.readString(spec.consoleLog());
        } catch (IOException e) {
            return "";
        }
    }

    private String fingerprint(String kernelKey) {
        String qemuVersion =
                HostCommand.run(List.of(qemu.binary(), "--version"), null, null).output();
        String hostKernel = HostCommand.run(List.of("uname", "-r"), null, null).output();
        return Hashing.sha256(
                        kernelKey + "\n" + qemuVersion + "\n" + hostKernel + "\n" + Files.exists(Path.of("/dev/kvm")))
                .substring(0, 16);
    }
}
