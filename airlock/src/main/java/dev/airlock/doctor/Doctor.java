package dev.airlock.doctor;

import dev.airlock.backend.Backend;
import dev.airlock.daemon.HostBackends;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.Progress;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.image.Kernel;
import dev.airlock.image.KernelBuild;
import dev.airlock.runtimes.HostRuntimes;
import dev.airlock.vmm.AccelProbe;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.VmmChoice;
import dev.airlock.vmm.VmmJail;
import dev.airlock.vmm.kvm.KvmProbe;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Tells the user what this host can do and which runtime Airlock will use by default, with the
 * reason for each answer: one line per runtime with its isolation boundary here, whether it
 * works and why not, and its measured start (measured once, then cached). Nothing here builds
 * anything; a missing kernel is reported.
 */
public final class Doctor {

    public enum Status {
        OK,
        WARN,
        FAIL,
        INFO
    }

    public record Check(String name, Status status, String detail) {}

    /**
     * @param mode the default runtime (what a sandbox gets without --runtime)
     * @param modeReason why: the strongest isolation that works here, or the override
     * @param runtimes every runtime: its isolation here, whether it works and why not, its start
     */
    public record Report(String mode, String modeReason, List<Check> checks, List<HostRuntimes.Line> runtimes) {}

    private final AirlockDirs dirs;

    public Doctor(AirlockDirs dirs) {
        this.dirs = dirs;
    }

    public Report examine(Progress progress) {
        List<Check> checks = new ArrayList<>();
        checks.add(new Check("java", Status.OK, "JDK " + Runtime.version()));
        QemuMicrovm qemu = new QemuMicrovm();
        String qemuVersion = qemu.version();
        checks.add(new Check(
                "qemu",
                !qemu.info().runnable() ? Status.FAIL : qemu.info().modern() ? Status.OK : Status.WARN,
                qemuVersion + (qemu.info().modern() ? "" : " (QEMU 9+ wanted for the VMM jail; run: airlock setup)")));
        checks.add(new Check(
                "vmm binary",
                Status.INFO,
                qemu.binary() + ": "
                        + VmmChoice.cached(dirs.cache())
                                .map(VmmChoice.Decision::reason)
                                .orElse(
                                        qemu.binary().equals(QemuMicrovm.FULL)
                                                ? "not measured yet (airlock setup times both binaries)"
                                                : "set by AIRLOCK_QEMU")));
        VmmJail.Decision jail = qemu.jail();
        checks.add(new Check("vmm jail", jail.jail() != null ? Status.OK : Status.WARN, jail.reason()));

        Path kvm = Path.of("/dev/kvm");
        checks.add(new Check(
                "kvm device",
                Files.exists(kvm) ? Status.INFO : Status.WARN,
                Files.exists(kvm) ? "/dev/kvm present (" + kvmModule() + ")" : "no /dev/kvm"));
        KvmProbe.Result probe = KvmProbe.atDefaultDevice().run();
        checks.add(new Check(
                "kvm probe (FFM, real-mode vCPU)",
                probe instanceof KvmProbe.Works ? Status.OK : Status.INFO,
                probe.summary()));

        Optional<Kernel> kernel = new KernelBuild(dirs).cached();
        if (kernel.isPresent()) {
            Kernel k = kernel.get();
            checks.add(new Check(
                    "guest kernel",
                    Status.OK,
                    "Linux " + k.version() + " (" + k.key() + "), vmlinux " + size(k.vmlinux()) + ", bzImage "
                            + size(k.bzImage()) + ", built in " + k.buildSeconds() + " s"));
            Path initrd = GuestAgent.bundled(dirs).initramfs();
            AccelProbe.Decision d = new AccelProbe(dirs.cache(), qemu).decide(k.vmlinux(), k.key(), initrd, progress);
            checks.add(new Check(
                    "guest boot under KVM",
                    d.accel() == dev.airlock.vmm.Accel.KVM ? Status.OK : Status.WARN,
                    d.reason() + (d.cached() ? " (cached result)" : "")));
        } else {
            checks.add(new Check(
                    "guest kernel",
                    Status.INFO,
                    "not built yet (needed by microVMs only; airlock setup builds it when microvm is the"
                            + " default, else the first microVM does)"));
        }
        List<Image> images = new ImageStore(dirs).list();
        checks.add(new Check(
                "images",
                images.isEmpty() ? Status.WARN : Status.OK,
                images.isEmpty()
                        ? "none built yet; run: airlock setup"
                        : String.join(
                                ", ",
                                images.stream()
                                        .map(i ->
                                                i.name() + " (" + i.shortId() + ", " + (i.sizeBytes() >> 20) + " MiB)")
                                        .toList())));
        checks.add(new Check("cgroups", Status.INFO, cgroupLayout()));
        // Each runtime says whether it can run here; one that cannot leaves the others working.
        for (Backend b : HostBackends.create(dirs, progress, HostBackends.Options.defaults())
                .all()) {
            Optional<String> why = b.unavailableReason();
            checks.add(new Check(
                    "runtime " + b.name(),
                    why.isEmpty() ? Status.OK : Status.WARN,
                    why.map(w -> "cannot run here: " + w).orElse("available")));
        }
        checks.add(ociRuntime());
        checks.add(hostCas());
        checks.add(diskSpace(dirs.cache(), "cache"));
        checks.add(diskSpace(dirs.data(), "data"));
        HostRuntimes runtimes = new HostRuntimes(dirs, progress);
        List<HostRuntimes.Line> lines = runtimes.examine();
        HostRuntimes.Default chosen = runtimes.defaultRuntime();
        String isolation = lines.stream()
                .filter(l -> l.runtime().equals(chosen.name()))
                .map(HostRuntimes.Line::isolation)
                .findFirst()
                .orElse("?");
        return new Report(chosen.name() + " (" + isolation + ")", chosen.reason(), checks, lines);
    }

    /**
     * The CAs sandboxes get from this host (as this command's environment names them; the daemon
     * reads its own): what a TLS-intercepting network or a company adds to the public ones.
     */
    static Check hostCas() {
        dev.airlock.net.HostCas.Found found = dev.airlock.net.HostCas.ofThisHost();
        List<String> parts = new ArrayList<>();
        for (dev.airlock.net.HostCas.Ca ca : found.cas()) {
            parts.add(ca.subject() + " (" + ca.source() + ", sha256 "
                    + ca.fingerprint().substring(0, 16) + ")");
        }
        String detail = found.cas().isEmpty()
                ? "none beyond the public CAs (looked in " + dev.airlock.net.HostCas.LOCAL_DIR + " and "
                        + String.join(", ", dev.airlock.net.HostCas.VARIABLES) + ")"
                : found.cas().size() + " added to every sandbox's trust store (--no-host-ca or [network]"
                        + " host_ca = false to leave out): " + String.join("; ", parts);
        if (!found.problems().isEmpty()) {
            detail += "; left out: " + String.join("; ", found.problems());
        }
        return new Check("host CAs", Status.INFO, detail);
    }

    static String kvmModule() {
        try {
            String modules = Files.readString(Path.of("/proc/modules"));
            for (String m : List.of("kvm_pvm", "kvm_intel", "kvm_amd")) {
                if (modules.contains(m + " ")) {
                    return "module " + m + (m.equals("kvm_pvm") ? ": paravirtual nested KVM" : "");
                }
            }
        } catch (IOException e) {
            // No /proc/modules: fall through.
        }
        return "module unknown";
    }

    /** cgroup v1, v2 or the hybrid of both (v1 controllers plus a cgroup2 mount). */
    static String cgroupLayout() {
        String mountinfo;
        try {
            mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        } catch (IOException e) {
            return "unknown (cannot read /proc/self/mountinfo)";
        }
        String v2At = null;
        boolean v1 = false;
        for (String line : mountinfo.lines().toList()) {
            String[] halves = line.split(" - ", 2);
            if (halves.length < 2) {
                continue;
            }
            String[] f = halves[0].split(" ");
            String fsType = halves[1].split(" ")[0];
            if (fsType.equals("cgroup2")) {
                v2At = f[4];
            } else if (fsType.equals("cgroup")) {
                v1 = true;
            }
        }
        if (v1 && v2At != null) {
            return "hybrid: cgroup v1 controllers plus cgroup2 at " + v2At
                    + " (container mode uses the cgroupfs manager; crun 1.8 refuses this layout as is)";
        }
        if (v2At != null) {
            return "cgroup v2 (unified) at " + v2At;
        }
        return v1 ? "cgroup v1" : "no cgroup filesystem mounted";
    }

    static Check ociRuntime() {
        List<String> found = new ArrayList<>();
        for (String rt : List.of("crun", "runc")) {
            HostCommand.Result r = HostCommand.run(List.of(rt, "--version"), null, null);
            if (r.ok()) {
                found.add(r.output().lines().findFirst().orElse(rt).strip());
            }
        }
        return found.isEmpty()
                ? new Check("oci runtime", Status.WARN, "neither crun nor runc found; run: airlock setup")
                : new Check("oci runtime", Status.OK, String.join("; ", found));
    }

    static Check diskSpace(Path dir, String what) {
        Path probe = dir;
        while (!Files.exists(probe) && probe.getParent() != null) {
            probe = probe.getParent();
        }
        try {
            long free = Files.getFileStore(probe).getUsableSpace();
            return new Check(
                    "disk (" + what + ")",
                    free < (4L << 30) ? Status.WARN : Status.OK,
                    (free >> 30) + " GiB free at " + dir);
        } catch (IOException e) {
            return new Check("disk (" + what + ")", Status.WARN, "cannot read free space at " + probe);
        }
    }

    private static String size(Path p) {
        try {
            return (Files.size(p) >> 20) + " MiB";
        } catch (IOException e) {
            return "?";
        }
    }
}
