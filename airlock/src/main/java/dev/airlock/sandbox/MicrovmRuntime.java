package dev.airlock.sandbox;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.NatCgroup;
import dev.airlock.vmm.Accel;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.RunningVm;
import dev.airlock.vmm.VmSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Sandboxes as QEMU microVMs: the image is a read-only virtio disk, the writable layer a second
 * one, and the agent runs as PID 1 behind a virtio-serial port.
 */
final class MicrovmRuntime implements SandboxRuntime {
    private final QemuMicrovm vmm;
    private final Supplier<SandboxEngine.BootAssets> boot;
    private final AirlockDirs dirs;

    MicrovmRuntime(QemuMicrovm vmm, Supplier<SandboxEngine.BootAssets> boot, AirlockDirs dirs) {
        this.vmm = vmm;
        this.boot = boot;
        this.dirs = dirs;
    }

    @Override
    public String name() {
        return "microvm";
    }

    @Override
    public long launch(Sandbox s, Path dir, Path runtimeDir) {
        return vmm.launch(spec(s, dir, runtimeDir, boot.get())).pid();
    }

    /** Starts the sandbox's VM from a saved stream instead of booting it; returns the VMM pid. */
    long restore(Sandbox s, Path dir, Path runtimeDir, VmSpec.GuestMemory memory, VmSpec.Restore restore) {
        return vmm.launch(spec(s, dir, runtimeDir, boot.get()).withMemory(memory, restore))
                .pid();
    }

    /** The running VM of a sandbox, or a clear error when its VMM is gone. */
    RunningVm vm(Sandbox s, Path dir, Path runtimeDir) {
        return attach(s, dir, runtimeDir)
                .orElseThrow(() -> new SandboxException(
                        SandboxException.Kind.CONFLICT, "the VM of sandbox '" + s.name() + "' is not running"));
    }

    QemuMicrovm vmm() {
        return vmm;
    }

    @Override
    public boolean running(Sandbox s, Path dir, Path runtimeDir) {
        return attach(s, dir, runtimeDir).isPresent();
    }

    @Override
    public void kill(Sandbox s, Path dir, Path runtimeDir) {
        attach(s, dir, runtimeDir).ifPresent(RunningVm::kill);
    }

    @Override
    public void awaitStop(Sandbox s, Path dir, Path runtimeDir, Duration grace) {
        attach(s, dir, runtimeDir).ifPresent(vm -> {
            if (!vm.awaitExit(grace)) {
                vm.kill();
            }
        });
    }

    @Override
    public void release(Sandbox s, Path dir, Path runtimeDir) {
        // A stopped VM holds nothing on the host but its files.
    }

    @Override
    public Path agentSocket(Path runtimeDir) {
        return runtimeDir.resolve("agent.sock");
    }

    private Optional<RunningVm> attach(Sandbox s, Path dir, Path runtimeDir) {
        return vmm.attach(spec(s, dir, runtimeDir, null));
    }

    /**
     * The VM spec of a sandbox; {@code assets} may be null when only the paths are needed
     * (attach). A nat sandbox's VM has a NIC, its QEMU in the sandbox's {@link NatCgroup}.
     */
    VmSpec spec(
            Sandbox s, Path dir, Path runtimeDir, SandboxEngine.@org.jspecify.annotations.Nullable BootAssets assets) {
        Path kernel = assets != null ? assets.kernel().vmlinux() : Path.of("/dev/null");
        Path initrd = assets != null ? assets.initrd() : Path.of("/dev/null");
        String cmdline = "console=ttyS0 reboot=t panic=-1 pci=off quiet airlock.root=/dev/vda airlock.layer=/dev/vdb"
                + " airlock.hostname=" + s.name() + " airlock.pids="
                + s.resources().pids();
        return new VmSpec(
                        kernel,
                        initrd,
                        cmdline,
                        List.of(
                                new VmSpec.Disk(Path.of(s.imageFile()), true),
                                new VmSpec.Disk(dir.resolve("layer.ext4"), false)),
                        s.resources().cpus(),
                        s.resources().memoryMiB(),
                        Accel.parse(s.accel()),
                        dir,
                        runtimeDir)
                .withNic(
                        s.nat() && assets != null
                                ? new VmSpec.Nic(NatCgroup.of(dirs, s.id()).procs())
                                : null);
    }
}
