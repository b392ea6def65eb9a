package dev.airlock.setup;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.Progress;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.Image;
import dev.airlock.image.ImageSpec;
import dev.airlock.image.ImageStore;
import dev.airlock.image.Kernel;
import dev.airlock.image.KernelBuild;
import dev.airlock.vmm.AccelProbe;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.VmmChoice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Brings a host to the point where a sandbox can boot: Debian packages, the base image
 * ({@link #ensureBase}: every runtime), and for microVMs the guest kernel, the agent's initramfs
 * and the accelerator decision ({@link #ensure}). Every step checks before it acts, so a second
 * run builds nothing. Which runtime is readied first is decided above this class, by the
 * runtimes the host has (a gVisor or container default never waits for the kernel build).
 */
public final class Setup {
    /** Space a kernel build plus one image build need at their peak. */
    static final long NEEDED_BYTES = 4L << 30;

    private final AirlockDirs dirs;
    private final Progress progress;

    public Setup(AirlockDirs dirs, Progress progress) {
        this.dirs = dirs;
        this.progress = progress;
    }

    /** What setup found or made; {@code built} lists what this run had to build. */
    public record Report(Kernel kernel, Image image, Path initrd, AccelProbe.Decision accel, List<String> built) {
        /** The accelerator microVMs use here: {@code kvm} or {@code tcg}. */
        public String accelFlag() {
            return accel.accel().flag();
        }

        /** Why that accelerator, in words. */
        public String accelReason() {
            return accel.reason();
        }
    }

    public Report ensure() {
        List<String> built = new ArrayList<>();
        ensurePackages(built);
        KernelBuild kernels = new KernelBuild(dirs);
        Kernel kernel = kernels.cached().orElse(null);
        ImageStore images = new ImageStore(dirs);
        boolean imageMissing = images.find("base").isEmpty();
        if (kernel == null || imageMissing) {
            checkSpace(dirs.cache());
        }
        if (kernel == null) {
            kernel = kernels.ensure(progress);
            built.add("kernel " + kernel.key() + " in " + kernel.buildSeconds() + " s");
        }
        Path initrd = GuestAgent.bundled(dirs).initramfs();
        Image image = images.find("base").orElse(null);
        if (image == null) {
            image = images.ensure(ImageSpec.builtin("base").orElseThrow(), progress);
            built.add("image base in " + image.buildMillis() / 1000 + " s");
        }
        AccelProbe.Decision accel = new AccelProbe(dirs.cache(), new QemuMicrovm())
                .decide(kernel.vmlinux(), kernel.key(), initrd, progress);
        VmmChoice.decide(
                dirs.cache(),
                kernel.vmlinux(),
                initrd,
                image.file(),
                accel.accel(),
                dirs.cache().resolve("vmm-choice.tmp"),
                progress);
        return new Report(kernel, image, initrd, accel, built);
    }

    /**
     * What every runtime needs: the Debian packages and the base image (no guest kernel: a
     * microVM's kernel is built by {@link #ensure}, for the first microVM). Appends what it
     * built to {@code built}.
     */
    public Image ensureBase(List<String> built) {
        ensurePackages(built);
        ImageStore images = new ImageStore(dirs);
        Image image = images.find("base").orElse(null);
        if (image == null) {
            checkSpace(dirs.cache(), 1L << 30);
            image = images.ensure(ImageSpec.builtin("base").orElseThrow(), progress);
            built.add("image base in " + image.buildMillis() / 1000 + " s");
        }
        return image;
    }

    private void ensurePackages(List<String> built) {
        Path script = dirs.source("scripts/install-packages.sh");
        HostCommand.Result check = HostCommand.run(List.of("bash", script.toString(), "--check"), null, null);
        if (check.ok()) {
            return;
        }
        progress.step("installing missing Debian packages: " + check.output().strip());
        HostCommand.Result install = HostCommand.run(List.of("bash", script.toString()), null, progress::step);
        if (!install.ok()) {
            throw new SetupException(
                    install.exitCode() == 2
                            ? install.output().strip()
                            : "installing Debian packages failed (exit " + install.exitCode() + "); run as root: "
                                    + "apt-get install " + check.output().strip());
        }
        built.add("packages " + check.output().strip());
    }

    static void checkSpace(Path dir) {
        checkSpace(dir, NEEDED_BYTES);
    }

    static void checkSpace(Path dir, long needed) {
        Path probe = dir;
        while (!Files.exists(probe) && probe.getParent() != null) {
            probe = probe.getParent();
        }
        try {
            long free = Files.getFileStore(probe).getUsableSpace();
            if (free < needed) {
                throw new SetupException("not enough disk space in " + probe + ": " + (free >> 20) + " MiB free, "
                        + (needed >> 20) + " MiB needed to build the kernel and the base image; free some"
                        + " space or point AIRLOCK_CACHE_DIR at a larger disk");
            }
        } catch (IOException e) {
            throw new SetupException("cannot check free space in " + probe + ": " + e.getMessage());
        }
    }

    /** Setup cannot continue; the message says what the user must do. */
    public static final class SetupException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public SetupException(String message) {
            super(message);
        }
    }
}
