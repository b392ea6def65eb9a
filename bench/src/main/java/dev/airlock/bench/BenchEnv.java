package dev.airlock.bench;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessExit;
import dev.airlock.host.Progress;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.image.Kernel;
import dev.airlock.image.KernelBuild;
import dev.airlock.vmm.Accel;
import dev.airlock.vmm.AccelProbe;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.VmSpec;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What every benchmark shares: the cached kernel, agent initramfs and base image (never built
 * here: no network), a private temporary data and runtime directory, and cleanup that kills every
 * QEMU the run started and deletes the temporary directory, on success, failure or Ctrl-C.
 */
final class BenchEnv implements AutoCloseable {
    static final Progress LOG = m -> System.err.println("bench: " + m);

    final AirlockDirs shared;
    final AirlockDirs dirs;
    final Path tmp;
    final Kernel kernel;
    final Path agentInitrd;
    final Image base;
    final Accel accel;
    final String accelReason;
    final QemuMicrovm qemu = new QemuMicrovm();

    private final List<Runnable> cleanups = new ArrayList<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    private int counter;

    private BenchEnv(AirlockDirs shared, Path tmp) {
        this.shared = shared;
        this.tmp = tmp;
        this.dirs = new AirlockDirs(shared.home(), shared.cache(), tmp.resolve("data"), tmp.resolve("run"));
        this.kernel = new KernelBuild(shared)
                .cached()
                .orElseThrow(() -> new IllegalStateException(
                        "no guest kernel in " + shared.kernels() + " for this source tree; run: bin/airlock setup"));
        this.agentInitrd = GuestAgent.bundled(shared).initramfs();
        this.base = new ImageStore(shared)
                .find("base")
                .orElseThrow(() -> new IllegalStateException(
                        "the base image is not built; run: bin/airlock setup (the benchmark never builds images)"));
        AccelProbe.Decision d =
                new AccelProbe(shared.cache(), qemu).decide(kernel.vmlinux(), kernel.key(), agentInitrd, LOG);
        this.accel = d.accel();
        this.accelReason = d.reason();
    }

    static BenchEnv open() {
        Path tmp;
        try {
            // Short: the agent and QMP sockets live under it and unix socket paths max out at 107 bytes.
            tmp = Files.createTempDirectory(Path.of("/tmp"), "airlock-bench-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary directory", e);
        }
        BenchEnv env;
        try {
            env = new BenchEnv(AirlockDirs.fromEnvironment(), tmp);
        } catch (RuntimeException e) {
            HostFiles.deleteTree(tmp);
            throw e;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(env::close, "bench-cleanup"));
        return env;
    }

    /** Runs before the QEMU sweep at close, newest first (e.g. removing the engine's sandboxes). */
    synchronized void onClose(Runnable r) {
        cleanups.add(r);
    }

    synchronized Path newDir(String prefix) {
        return AirlockDirs.ensureDir(tmp.resolve(prefix + "-" + counter++));
    }

    /** A fresh sparse ext4 file, formatted as the engine formats a sandbox's writable layer. */
    static Path newLayer(Path file, long diskMiB) {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(diskMiB << 20);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + file, e);
        }
        HostCommand.check(List.of(
                "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", file.toString()));
        return file;
    }

    /** The spec the engine would boot for a sandbox with these disks: same kernel, initrd and cmdline. */
    VmSpec agentSpec(Path dir, Path layer, int memoryMiB, boolean quiet) {
        String cmdline = "console=ttyS0 reboot=t panic=-1 pci=off" + (quiet ? " quiet" : "")
                + " airlock.root=/dev/vda airlock.layer=/dev/vdb airlock.hostname=bench";
        return new VmSpec(
                kernel.vmlinux(),
                agentInitrd,
                cmdline,
                List.of(new VmSpec.Disk(base.file(), true), new VmSpec.Disk(layer, false)),
                1,
                memoryMiB,
                accel,
                dir,
                dir);
    }

    /** The baseline: the same kernel with a trivial init, no disks. */
    VmSpec bareSpec(Path dir, Path initrd, int memoryMiB, boolean quiet) {
        String cmdline = "console=ttyS0 reboot=t panic=-1 pci=off" + (quiet ? " quiet" : "");
        return new VmSpec(kernel.vmlinux(), initrd, cmdline, List.of(), 1, memoryMiB, accel, dir, dir);
    }

    Map<String, Object> hostInfo() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cpu", cpuModel());
        m.put("cpus", Runtime.getRuntime().availableProcessors());
        m.put("hostKernel", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        m.put("qemu", qemu.version());
        m.put("accel", accel.flag());
        m.put("accelReason", accelReason);
        m.put("guestKernel", kernel.version() + " (key " + kernel.key() + ")");
        m.put("image", base.name() + " " + base.shortId() + " (" + (base.sizeBytes() >> 20) + " MiB erofs)");
        m.put("java", Runtime.version().toString());
        HostCommand.Result git = HostCommand.run(
                List.of("git", "-C", shared.home().toString(), "describe", "--always", "--dirty"), null, null);
        m.put("commit", git.ok() ? git.output().strip() : "unknown");
        return m;
    }

    private static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).strip())
                    .findFirst()
                    .orElse("unknown");
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** Where result files go: --out, else {@code <airlock.home>/bench/results}. */
    Path resultsDir(Args args) {
        Path out = args.path("out");
        return out != null ? out : shared.home().resolve("bench").resolve("results");
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        List<Runnable> todo;
        synchronized (this) {
            todo = new ArrayList<>(cleanups).reversed();
        }
        for (Runnable r : todo) {
            try {
                r.run();
            } catch (RuntimeException e) {
                LOG.step("cleanup step failed: " + e.getMessage());
            }
        }
        QemuProcess.killAll();
        // Anything still running from our directory (a daemonized VM whose sandbox record was lost).
        String marker = tmp.toString();
        ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().map(c -> c.contains(marker)).orElse(false))
                .forEach(p -> {
                    LOG.step("killing leftover process " + p.pid());
                    p.destroyForcibly();
                    ProcessExit.await(p.pid(), java.time.Duration.ofSeconds(10));
                });
        try {
            HostFiles.deleteTree(tmp);
        } catch (UncheckedIOException e) {
            LOG.step("cannot delete " + tmp + ": " + e.getMessage());
        }
    }
}
