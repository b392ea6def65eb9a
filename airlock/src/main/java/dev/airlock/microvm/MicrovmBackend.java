package dev.airlock.microvm;

import dev.airlock.backend.Backend;
import dev.airlock.backend.Boundary;
import dev.airlock.backend.Capability;
import dev.airlock.backend.CloneResult;
import dev.airlock.backend.HostFit;
import dev.airlock.backend.Launch;
import dev.airlock.backend.ResourceUse;
import dev.airlock.backend.SandboxPaths;
import dev.airlock.backend.WarmPool;
import dev.airlock.guest.AgentEndpoint;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestIdentity;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.DiskLayer;
import dev.airlock.host.Failpoint;
import dev.airlock.host.HostFiles;
import dev.airlock.host.NatCgroup;
import dev.airlock.host.ProcessExit;
import dev.airlock.host.ProcessStamp;
import dev.airlock.host.Progress;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.Kernel;
import dev.airlock.image.KernelBuild;
import dev.airlock.sandbox.Names;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.setup.Setup;
import dev.airlock.vmm.Accel;
import dev.airlock.vmm.AccelProbe;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.RunningVm;
import dev.airlock.vmm.VmSpec;
import dev.airlock.vmm.VmmJail;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.jspecify.annotations.Nullable;

/**
 * Sandboxes as QEMU microVMs: the image is a read-only virtio disk, the writable layer a second
 * one (an ext4 file), and the agent runs as PID 1 behind a virtio-serial port. This backend
 * owns everything only a VM has: the kernel and accelerator decision, {@link VmTemplates} every
 * new sandbox is restored from, the {@link WarmPool}, pause/resume and fork by migration
 * streams, and the disk layer tooling ({@link DiskLayer}).
 */
public final class MicrovmBackend implements Backend {
    public static final String NAME = "microvm";
    /** A restored VM answers within a second even under emulation; beyond this it is broken. */
    static final Duration RESTORE_TIMEOUT = Duration.ofSeconds(60);
    /** What a warm-up command of ours may print (it prints nothing): the guest is hostile. */
    static final long WARM_UP_OUTPUT = 64 << 10;
    /** How long after a claim its pool's refill starts (see claimPooled). */
    private static final Duration REFILL_AFTER = Duration.ofMillis(500);
    /** Marks a layer nothing has booted from yet: such a sandbox may start from a template. */
    private static final String FRESH_LAYER = "fresh-layer";
    /** The saved VM of a paused sandbox. */
    private static final String PAUSED_STATE = "paused.state";

    private static final String LAYER = "layer.ext4";
    /** Boot under software emulation on a busy 2-core host can take tens of seconds. */
    private static final Duration BOOT_TIMEOUT = Duration.ofSeconds(180);

    private final AirlockDirs dirs;
    private final QemuMicrovm vmm = new QemuMicrovm();
    private final Progress progress;
    private final VmTemplates templates;
    private final GuestClock clock;
    private final boolean useTemplates;
    private volatile @Nullable WarmPool pool;
    /**
     * The agent session each ready pooled VM was filled through, by its id, kept open: the claim
     * sends the identity on it instead of connecting and saying HELLO anew, and a session that
     * has closed says that the VM is gone. While it is open the VM's agent port (one host
     * connection at a time) serves no other, which a VM nobody has claimed needs not.
     */
    private final Map<String, GuestChannel> pooledSessions = new ConcurrentHashMap<>();

    private @Nullable BootAssets boot;
    /** Why QEMU cannot run here, once asked: empty when it can. */
    private volatile @Nullable String unavailable;

    /** The kernel, initramfs and accelerator every boot needs. */
    record BootAssets(Kernel kernel, Path initrd, AccelProbe.Decision accel) {}

    /** {@code useTemplates}: whether new sandboxes are restored from VM templates (else booted cold). */
    public MicrovmBackend(AirlockDirs dirs, Progress progress, boolean useTemplates) {
        this.dirs = dirs;
        this.progress = progress;
        this.templates = new VmTemplates(dirs, this, progress);
        this.clock = new GuestClock(dirs.cache(), () -> GuestAgent.bundled(dirs).binary());
        this.useTemplates = useTemplates;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String isolation(Sandbox s) {
        return s.accel().equals(Accel.KVM.flag())
                ? "hardware virtualization (KVM microVM)"
                : "software emulation (QEMU TCG microVM; TCG is not a hardware boundary)";
    }

    @Override
    public Set<Capability> capabilities() {
        Set<Capability> c = EnumSet.of(Capability.PAUSE, Capability.FORK, Capability.NAT);
        if (useTemplates) {
            c.add(Capability.TEMPLATES);
            c.add(Capability.WARM_POOL);
        }
        return c;
    }

    @Override
    public Optional<String> unavailableReason() {
        String known = unavailable;
        if (known == null) {
            String version = vmm.version();
            known = version.startsWith("not runnable")
                    ? vmm.binary() + " is " + version + " (install QEMU: bin/airlock setup)"
                    : "";
            unavailable = known;
        }
        return known.isEmpty() ? Optional.empty() : Optional.of(known);
    }

    /**
     * Hardware virtualization where the KVM boot test passed, software emulation otherwise. Before
     * setup has built the guest kernel the boot test cannot run, so the answer is predicted from
     * /dev/kvm and its module ({@link AccelProbe#predict}); the start is the guest kernel's boot
     * to the agent under the chosen accelerator, measured once the kernel exists.
     */
    @Override
    public HostFit hostFit() {
        Optional<String> why = unavailableReason();
        Optional<Kernel> kernel = new KernelBuild(dirs).cached();
        if (why.isPresent() || kernel.isEmpty()) {
            AccelProbe.Decision guess = AccelProbe.predict();
            return new HostFit(
                    guess.accel() == Accel.KVM ? Boundary.HARDWARE_VIRTUALIZATION : Boundary.SOFTWARE_EMULATION,
                    why.orElse(null),
                    -1,
                    "guest kernel boot (not built yet: airlock setup, or the first microVM, builds it)",
                    guess.reason());
        }
        BootAssets b = bootAssets();
        Accel accel = b.accel().accel();
        long millis = new AccelProbe(dirs.cache(), vmm)
                .bootMillis(b.kernel().vmlinux(), b.kernel().key(), b.initrd(), accel, progress);
        return new HostFit(
                accel == Accel.KVM ? Boundary.HARDWARE_VIRTUALIZATION : Boundary.SOFTWARE_EMULATION,
                null,
                millis,
                "QEMU launch to the agent's ready line, " + accel.flag(),
                (accel == Accel.KVM ? "KVM" : "TCG") + ": " + b.accel().reason());
    }

    /** Builds the guest kernel (minutes, with progress) and decides the accelerator. */
    @Override
    public void prepareHost() {
        bootAssets();
    }

    @Override
    public String accel(@Nullable String requested) {
        return requested != null
                ? Accel.parse(requested).flag()
                : bootAssets().accel().accel().flag();
    }

    @Override
    public void prepare(Sandbox s, SandboxPaths paths, @Nullable Path layerTemplate) {
        // The disk layer is made (or copied from a workspace's setup layer) at start: a start
        // from a VM template brings the template's own layer instead.
        try {
            Files.writeString(
                    HostFiles.ownerOnlyFile(paths.dir().resolve(FRESH_LAYER)),
                    layerTemplate == null ? "" : layerTemplate.toString());
        } catch (IOException e) {
            throw new SandboxException("cannot create sandbox files in " + paths.dir() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public Optional<String> claimReady(Sandbox fresh) {
        WarmPool p = pool;
        if (p == null || sharesRoot(fresh)) {
            return Optional.empty();
        }
        return p.take(
                templates.key(fresh, bootAssets(), null), fresh.resources().memoryMiB());
    }

    @Override
    public Launch start(Sandbox s, SandboxPaths paths) {
        Path dir = paths.dir();
        Launch launch;
        if (Files.exists(dir.resolve(WarmPool.MARKER))) {
            launch = claimPooled(s, paths);
        } else if (Files.exists(dir.resolve(FRESH_LAYER))) {
            // A directory root (an OCI bundle's rootfs) is the VM's disk itself: no template
            // was booted on it, so it boots cold.
            launch = useTemplates && !sharesRoot(s) ? startFromTemplate(s, paths) : bootFresh(s, paths);
        } else {
            launch = new Launch(vmm.launch(spec(s, paths, bootAssets())).pid(), "cold", false);
        }
        HostFiles.deleteTree(dir.resolve(FRESH_LAYER));
        return launch;
    }

    /**
     * Restores a never-booted sandbox from the template of its configuration (building it first
     * when there is none) and gives it its own identity. Anything wrong with the template is
     * reported, the template deleted, and the sandbox booted cold instead: a start never returns
     * a half-restored VM.
     */
    private Launch startFromTemplate(Sandbox s, SandboxPaths paths) {
        BootAssets assets = bootAssets();
        Path layerTemplate = freshLayerTemplate(paths.dir());
        String key = templates.key(s, assets, layerTemplate);
        long ramBytes = (long) s.resources().memoryMiB() << 20;
        boolean existed = Files.isDirectory(templates.root().resolve(key));
        Optional<VmTemplates.Template> found = templates.find(key, ramBytes);
        // A template that was there but failed its checks was just deleted with a warning: this
        // start boots cold and the next one rebuilds it.
        if (found.isEmpty() && !existed) {
            // One build per key at a time (across threads and processes): many sandboxes started
            // at once wait for the first one's template instead of all booting their own.
            try (HostFiles.Lock ignored = HostFiles.lock(
                    AirlockDirs.ensureOwnerOnlyDir(templates.root()).resolve(key + ".lock"))) {
                found = templates.find(key, ramBytes);
                if (found.isEmpty()) {
                    found = Optional.of(templates.build(key, s, assets, layerTemplate, BOOT_TIMEOUT));
                }
            } catch (RuntimeException e) {
                progress.step("warning: cannot build a VM template (" + e.getMessage() + "); booting cold");
            }
        }
        if (found.isPresent()) {
            VmTemplates.Template t = found.get();
            try {
                long pid = restoreFrom(s, paths, t.layer(), t.ram(), t.state(), true);
                WarmPool p = pool;
                // Pooled VMs serve plain creates only: a workspace's setup layer is not theirs.
                if (p != null && layerTemplate == null) {
                    p.refill(key, s);
                }
                return new Launch(pid, "template " + key, true);
            } catch (RuntimeException e) {
                templates.discard(key, "restoring from it failed (" + e.getMessage() + ")");
            }
        }
        return bootFresh(s, paths);
    }

    /** Boots a never-started sandbox cold, on a new layer (or a copy of its workspace's setup layer). */
    private Launch bootFresh(Sandbox s, SandboxPaths paths) {
        DiskLayer.fresh(paths.dir().resolve(LAYER), s.resources().diskMiB(), freshLayerTemplate(paths.dir()));
        return new Launch(vmm.launch(spec(s, paths, bootAssets())).pid(), "cold", false);
    }

    /** The workspace setup layer a never-started sandbox's disk starts from, or null for an empty disk. */
    private static @Nullable Path freshLayerTemplate(Path dir) {
        try {
            String template = Files.readString(dir.resolve(FRESH_LAYER)).strip();
            return template.isEmpty() ? null : Path.of(template);
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * Hands a warm-pool VM its identity (entropy, clock, hostname; its machine-id is its own since
     * the fill) on the session it was filled through, without waiting for the answer: the agent
     * reads a session's frames in order and applies the identity before it reads the next
     * session's HELLO, so the first command finds it applied. The session's write half is shut
     * down rather than closed, so QEMU reads the frame before it sees the host leave and accepts
     * the next connection (already waiting in its listen backlog, if any) right after. If the VM
     * is gone (its kept session has ended, a write fails) or, without a kept session, does not
     * answer, the sandbox starts from its template (or cold) as if it had never been pooled.
     */
    private Launch claimPooled(Sandbox s, SandboxPaths paths) {
        Path dir = paths.dir();
        String key = WarmPool.keyOf(dir);
        HostFiles.deleteTree(dir.resolve(WarmPool.MARKER));
        GuestChannel kept = pooledSessions.remove(dir.getFileName().toString());
        try {
            RunningVm vm = vm(s, paths);
            if (kept != null) {
                if (!kept.isOpen()) {
                    throw new IOException("its agent session ended while it waited (its VM is gone)");
                }
                kept.sendIdentity(GuestIdentity.renamed(s.name()));
                kept.finishSending(RESTORE_TIMEOUT);
            } else {
                try (GuestChannel ch = GuestChannel.connect(vm.agentSocket(), RESTORE_TIMEOUT)) {
                    ch.setIdentity(GuestIdentity.renamed(s.name()), RESTORE_TIMEOUT);
                }
            }
            WarmPool p = pool;
            if (p != null) {
                // Not at once: under TCG the successor's restore and warm-up take a few hundred ms
                // of CPU, which a small host would otherwise take from this sandbox's first commands.
                p.refill(key, s, REFILL_AFTER);
            }
            // Its running record may lapse in a host crash: back to created, with no pool marker
            // and its own layer, it boots cold from that layer, as a start after the crash would.
            return new Launch(vm.pid(), "pool, template " + key, true, true);
        } catch (IOException | RuntimeException e) {
            progress.step(
                    "warning: warm-pool VM for " + s.name() + " unusable (" + e.getMessage() + "); restoring anew");
            closeQuietly(kept);
            kill(s, paths);
        } catch (InterruptedException e) {
            closeQuietly(kept);
            kill(s, paths);
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while starting sandbox " + s.name(), e);
        }
        prepare(s, paths, null);
        return useTemplates ? startFromTemplate(s, paths) : bootFresh(s, paths);
    }

    private static void closeQuietly(@Nullable GuestChannel ch) {
        if (ch != null) {
            ch.close();
        }
    }

    /**
     * Keeps {@code perTemplate} VMs restored and waiting for every template a sandbox was started
     * from, within {@code budgetMiB} of guest memory in all, so a create + start only claims one.
     * For the daemon (a long-lived process); first ends the pooled VMs a previous daemon left.
     */
    public synchronized void enableWarmPool(int perTemplate, long budgetMiB) {
        sweepWarmPool();
        if (perTemplate > 0 && useTemplates) {
            pool = new WarmPool(perTemplate, budgetMiB, dirs.sandboxes(), this::fillPool, progress);
        }
    }

    /**
     * Ends every pooled VM (ready ones of this backend and any a previous process left). The wait
     * for restores under way holds no lock of this backend: a restore needs it ({@link
     * #bootAssets}), so waiting with it held stalled until {@code wait} ran out, and the restore
     * then finished after the sweep and left a pooled VM running for good.
     */
    public void closeWarmPool(Duration wait) throws InterruptedException {
        WarmPool p;
        synchronized (this) {
            p = pool;
            pool = null;
        }
        if (p != null) {
            p.awaitIdle(wait);
            p.drain();
        }
        synchronized (this) {
            sweepWarmPool();
        }
    }

    /** Waits until the warm pool has no restore under way (tests, benchmarks). */
    public void awaitWarmPool(Duration timeout) throws InterruptedException {
        WarmPool p = pool;
        if (p != null) {
            p.awaitIdle(timeout);
        }
    }

    @Override
    public void close() {
        try {
            closeWarmPool(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void sweepWarmPool() {
        for (Path d : WarmPool.leftovers(dirs.sandboxes())) {
            closeQuietly(pooledSessions.remove(d.getFileName().toString()));
            endPooled(d);
            HostFiles.deleteTree(d);
            HostFiles.deleteTree(
                    dirs.runtime().resolve(d.getFileName().toString().substring(0, 16)));
        }
    }

    /** Kills the VMM of a pooled (record-less) sandbox directory, if one runs there. */
    private static void endPooled(Path dir) {
        try {
            long pid = Long.parseLong(Files.readString(dir.resolve("vmm.pid")).strip());
            ProcessHandle.of(pid)
                    .filter(p -> p.info()
                            .commandLine()
                            .map(c -> c.contains(dir.toString()))
                            .orElse(false))
                    .ifPresent(p -> {
                        p.destroyForcibly();
                        ProcessExit.await(p.pid(), Duration.ofSeconds(30));
                    });
        } catch (IOException | RuntimeException e) {
            // No VMM there (never started, or already gone).
        }
    }

    /** Restores one pool VM for {@code key} into the directory of {@code id} and warms it up with one exec. */
    private void fillPool(String key, Sandbox like, String id) {
        Sandbox s = like.copyAs(id, "airlock");
        VmTemplates.Template t = templates
                .find(key, (long) s.resources().memoryMiB() << 20)
                .orElseThrow(() -> SandboxException.failed("template " + key + " is gone"));
        SandboxPaths paths = new SandboxPaths(
                AirlockDirs.ensureOwnerOnlyDir(dirs.sandboxes().resolve(id)),
                dirs.runtime().resolve(id.substring(0, 16)));
        restoreFrom(s, paths, t.layer(), t.ram(), t.state(), false);
        // Under emulation (TCG) the first time guest code runs after a restore it is translated,
        // which makes a first command cost several later ones. Run here, not in the claim, what
        // a claim and a first command run: the identity's paths (hostname, machine-id, clock),
        // the agent's exec path, the dynamic loader and libc (a dynamically linked true), and a
        // shell; twice, as a second run still meets code the first only began (its exit path,
        // page-cache hits where the first faulted). The machine-id given here is the
        // sandbox's for good: the claim sets its name, entropy and clock, on this session, kept.
        GuestChannel ch = null;
        try {
            ch = GuestChannel.connect(agent(s, paths), RESTORE_TIMEOUT);
            for (int round = 0; round < 2; round++) {
                ch.setIdentity(GuestIdentity.fresh(s.name()));
                for (ExecSpec warm : List.of(ExecSpec.of("true"), ExecSpec.of("/bin/sh", "-c", "true"))) {
                    ch.execBounded(
                            warm,
                            OutputStream.nullOutputStream(),
                            OutputStream.nullOutputStream(),
                            WARM_UP_OUTPUT,
                            RESTORE_TIMEOUT);
                }
            }
            pooledSessions.put(id, ch);
        } catch (IOException e) {
            closeQuietly(ch);
            kill(s, paths);
            throw new SandboxException("the pooled VM did not run a command: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            kill(s, paths);
            throw e;
        } catch (InterruptedException e) {
            closeQuietly(ch);
            kill(s, paths);
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted", e);
        }
    }

    /**
     * Copies a saved layer into the sandbox, restores its VM from a stream whose RAM is the file
     * {@code ram} (mapped privately) or, when {@code ram} is null, inside the stream, waits for
     * the agent and hands it a fresh identity. On failure the VM is killed and the error thrown.
     */
    private long restoreFrom(
            Sandbox s, SandboxPaths paths, @Nullable Path layer, @Nullable Path ram, Path state, boolean newIdentity) {
        return restoreFrom(s, paths, layer, ram, 0, state, newIdentity);
    }

    /** As above, the guest's RAM starting {@code ramOffset} bytes into {@code ram}. */
    private long restoreFrom(
            Sandbox s,
            SandboxPaths paths,
            @Nullable Path layer,
            @Nullable Path ram,
            long ramOffset,
            Path state,
            boolean newIdentity) {
        if (layer != null) {
            HostFiles.deleteTree(paths.dir().resolve(LAYER));
            DiskLayer.copy(layer, paths.dir().resolve(LAYER), 0);
        }
        VmSpec.GuestMemory memory =
                ram == null ? new VmSpec.GuestMemory.Anonymous() : new VmSpec.GuestMemory.File(ram, false, ramOffset);
        long pid = vmm.launch(
                        spec(s, paths, bootAssets()).withMemory(memory, new VmSpec.Restore(state, ram != null, true)))
                .pid();
        try (GuestChannel ch = GuestChannel.connect(agent(s, paths), RESTORE_TIMEOUT)) {
            ch.setIdentity(
                    newIdentity
                            ? GuestIdentity.fresh(s.name())
                            : new GuestIdentity(GuestIdentity.fresh(s.name()).entropy(), null, null),
                    RESTORE_TIMEOUT);
            return pid;
        } catch (IOException | RuntimeException e) {
            kill(s, paths);
            throw new SandboxException("the restored VM did not take its identity: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            kill(s, paths);
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while restoring sandbox " + s.name(), e);
        }
    }

    /** Where VM templates are kept (tests damage them on purpose). */
    public Path templateDir() {
        return templates.root();
    }

    @Override
    public void pause(Sandbox s, SandboxPaths paths, Runnable recordPaused) {
        RunningVm vm = vm(s, paths);
        Path state = paths.dir().resolve(PAUSED_STATE);
        try {
            vm.saveState(state, false);
            // Once the VMM ends, the saved state is the only copy of the guest's memory: written
            // out before the record says paused, with the disk it goes with (QEMU writes the disk
            // past the page cache, but what the create copied into it may still be there).
            HostFiles.syncTree(state);
            HostFiles.syncTree(paths.dir().resolve(LAYER));
        } catch (RuntimeException e) {
            HostFiles.deleteTree(state);
            vm.resume();
            throw new SandboxException("cannot pause sandbox '" + s.name() + "': " + e.getMessage(), e);
        }
        // A crash here leaves a stopped VM whose record says running; one after the record, a
        // paused sandbox whose VMM still runs. The engine mends both (its operation marker).
        Failpoint.reached("microvm-pause-saved");
        recordPaused.run();
        Failpoint.reached("microvm-pause-recorded");
        vm.kill();
    }

    @Override
    public void thaw(Sandbox s, SandboxPaths paths) {
        vmm.attach(spec(s, paths, null)).ifPresent(RunningVm::thaw);
    }

    @Override
    public Launch resume(Sandbox s, SandboxPaths paths) {
        long pid = restoreFrom(s, paths, null, null, paths.dir().resolve(PAUSED_STATE), false);
        return new Launch(pid, "resumed", true);
    }

    @Override
    public void discardPaused(SandboxPaths paths) {
        HostFiles.deleteTree(paths.dir().resolve(PAUSED_STATE));
    }

    /**
     * Whether a fork saves with mapped-ram. {@code -Dairlock.forkCopiesRam=true} takes the path
     * QEMU 7.2 takes (a full stream, RAM copied) under any VMM: bench/snapshot.sh's baseline,
     * measured in the same run. (A pause keeps the full stream: with mapped-ram and the
     * device-state step it took 2-10 s instead of 0.5 s, for a resume 0.3 s faster.)
     */
    private static boolean savesMappedRam(RunningVm vm) {
        return vm.savesMappedRam() && !Boolean.getBoolean("airlock.forkCopiesRam");
    }

    private static long ramBytes(Sandbox s) {
        return (long) s.resources().memoryMiB() << 20;
    }

    /**
     * Writes the device state of the VM saved in the mapped-ram file {@code ram} to {@code out},
     * without its RAM: a stopped VM maps the file's RAM image as its shared memory, loads the file
     * (each page read onto itself: no copy) and saves again with {@code x-ignore-shared}. VMs
     * that map the image privately then restore from {@code out}. {@code layer}: the disk the
     * saved VM had (opened, never written: the VM never runs).
     */
    private void deviceState(Sandbox s, Path layer, Path ram, long ramOffset, Path out) {
        Path work = AirlockDirs.ensureDir(
                dirs.data().resolve("forks").resolve(Names.newId().substring(0, 16)));
        Path runtime =
                dirs.runtime().resolve("frk-" + work.getFileName().toString().substring(0, 12));
        try {
            if (!layer.equals(work.resolve(LAYER))) {
                Files.createLink(work.resolve(LAYER), layer);
            }
            VmSpec convert = spec(s, new SandboxPaths(work, runtime), bootAssets())
                    .withMemory(
                            new VmSpec.GuestMemory.File(ram, true, ramOffset),
                            new VmSpec.Restore(ram, false, false, true));
            RunningVm loaded = vmm.launch(convert);
            try {
                loaded.saveState(out, true);
            } finally {
                loaded.kill();
            }
        } catch (IOException e) {
            throw new SandboxException("cannot link the layer for the device-state save: " + e.getMessage(), e);
        } finally {
            HostFiles.deleteTree(work);
            HostFiles.deleteTree(runtime);
        }
    }

    /**
     * How: the source is saved with QEMU's {@code mapped-ram}, which writes its RAM as a sparse
     * image at a fixed offset of the file (and hands back the template pages the save faulted
     * in, so the source does not grow by its whole RAM). A stopped VM maps that image as its
     * shared RAM and loads the file (reading each page onto itself, no copy), then saves its
     * device state alone with {@code x-ignore-shared}; the clones map the image privately, like
     * a template, sharing every page none of them has written. A VMM without mapped-ram saves a
     * full stream instead, which the stopped VM loads into a new shared RAM file.
     */
    @Override
    public List<CloneResult> fork(Sandbox src, SandboxPaths srcPaths, List<Clone> clones) {
        if (sharesRoot(src)) {
            throw SandboxException.conflict("sandbox '" + src.name() + "' runs on a shared host directory ("
                    + src.imageFile() + "), which clones could not each have: it cannot be forked");
        }
        // Named after this process: a fork cut short leaves its memory image here, which the next
        // daemon's sweep removes once this process is gone (sweepLeftovers).
        String tag = Names.newId().substring(0, 12);
        Path work = AirlockDirs.ensureOwnerOnlyDir(
                forks().resolve(ProcessStamp.current().text() + "." + tag));
        Path convertRuntime = forkRuntime(tag);
        try {
            RunningVm vm = vm(src, srcPaths);
            Path ram = work.resolve("ram");
            long ramOffset = 0;
            boolean mapped = savesMappedRam(vm);
            try {
                if (mapped) {
                    ramOffset = vm.saveMappedRam(ram, ramBytes(src));
                } else {
                    vm.saveState(work.resolve("full.state"), false);
                }
                Failpoint.reached("microvm-fork-saved");
                DiskLayer.copy(srcPaths.dir().resolve(LAYER), work.resolve(LAYER), 0);
            } finally {
                vm.resume();
            }
            if (mapped) {
                deviceState(src, work.resolve(LAYER), ram, ramOffset, work.resolve("state"));
            } else {
                VmSpec convert = spec(src, new SandboxPaths(work, convertRuntime), bootAssets())
                        .withMemory(
                                new VmSpec.GuestMemory.File(ram, true),
                                new VmSpec.Restore(work.resolve("full.state"), false, false));
                RunningVm loaded = vmm.launch(convert);
                try {
                    loaded.saveState(work.resolve("state"), true);
                } finally {
                    loaded.kill();
                }
                HostFiles.deleteTree(work.resolve("full.state"));
            }
            long offset = ramOffset;
            List<Future<Long>> started = new ArrayList<>();
            try (var threads = Executors.newVirtualThreadPerTaskExecutor()) {
                for (Clone c : clones) {
                    started.add(threads.submit(() -> restoreFrom(
                            c.sandbox(), c.paths(), work.resolve(LAYER), ram, offset, work.resolve("state"), true)));
                }
            }
            List<CloneResult> out = new ArrayList<>();
            for (Future<Long> f : started) {
                try {
                    out.add(CloneResult.launched(new Launch(f.get(), "fork of " + src.name(), true)));
                } catch (ExecutionException | InterruptedException e) {
                    out.add(CloneResult.failed(
                            String.valueOf(e.getCause() != null ? e.getCause().getMessage() : e)));
                }
            }
            return out;
        } finally {
            // Clones keep the RAM file mapped; deleting its name frees it when the last one exits.
            HostFiles.deleteTree(work);
            HostFiles.deleteTree(convertRuntime);
        }
    }

    private Path forks() {
        return dirs.data().resolve("forks");
    }

    private Path forkRuntime(String tag) {
        return dirs.runtime().resolve("frk-" + tag);
    }

    /**
     * Removes the work of forks whose process died: the full memory image of the source, the
     * shared RAM file, and the stopped VM that was converting one into the other (its QEMU would
     * otherwise hold guest memory for good). Clones already started keep their private mapping of
     * the RAM file, whose name alone goes.
     */
    @Override
    public void sweepLeftovers() {
        for (Path work : HostFiles.children(forks())) {
            String name = work.getFileName().toString();
            Optional<ProcessStamp> by = ProcessStamp.parse(name);
            if (by.isPresent() && by.get().isAlive()) {
                continue;
            }
            endProcessesUsing(work);
            String tag = name.substring(name.lastIndexOf('.') + 1);
            HostFiles.deleteTree(forkRuntime(tag));
            HostFiles.deleteTree(work);
            progress.step("removed what a fork cut short left behind: " + work);
        }
    }

    /**
     * Kills any process whose command line names {@code dir} (a VMM working there): only this
     * user's and the jailed VMMs' user's, so no other user's process dies for naming the path.
     */
    private static void endProcessesUsing(Path dir) {
        String needle = dir.toString();
        String me = System.getProperty("user.name", "");
        ProcessHandle.allProcesses()
                .filter(p -> p.info()
                        .user()
                        .map(u -> u.equals(me) || u.equals(VmmJail.USER))
                        .orElse(false))
                .filter(p -> p.info().commandLine().map(c -> c.contains(needle)).orElse(false))
                .forEach(p -> {
                    p.destroyForcibly();
                    ProcessExit.await(p.pid(), Duration.ofSeconds(30));
                });
    }

    /** The running VM of a sandbox, or a clear error when its VMM is gone. */
    private RunningVm vm(Sandbox s, SandboxPaths paths) {
        return vmm.attach(spec(s, paths, null))
                .orElseThrow(() -> SandboxException.conflict("the VM of sandbox '" + s.name() + "' is not running"));
    }

    QemuMicrovm vmm() {
        return vmm;
    }

    /** The guest clock a VM of this accelerator boots with, as a template key names it. */
    String clockKey(Accel accel) {
        return accel == Accel.TCG ? clock.keyPart() : "kvm";
    }

    @Override
    public boolean running(Sandbox s, SandboxPaths paths) {
        return vmm.attach(spec(s, paths, null)).isPresent();
    }

    @Override
    public void kill(Sandbox s, SandboxPaths paths) {
        vmm.attach(spec(s, paths, null)).ifPresent(RunningVm::kill);
    }

    @Override
    public void awaitStop(Sandbox s, SandboxPaths paths, Duration grace) {
        vmm.attach(spec(s, paths, null)).ifPresent(vm -> {
            if (!vm.awaitExit(grace)) {
                vm.kill();
            }
        });
    }

    @Override
    public void release(Sandbox s, SandboxPaths paths) {
        // A stopped VM holds nothing on the host but its files.
    }

    @Override
    public AgentEndpoint agent(Sandbox s, SandboxPaths paths) {
        return vmm.agentEndpoint(spec(s, paths, null));
    }

    @Override
    public Path writableLayer(SandboxPaths paths) {
        return paths.dir().resolve(LAYER);
    }

    @Override
    public Path log(SandboxPaths paths) {
        return paths.dir().resolve("console.log");
    }

    @Override
    public ResourceUse usage(Sandbox s, SandboxPaths paths) {
        long rss = 0;
        long pss = 0;
        double cpu = 0;
        Optional<RunningVm> vm = vmm.attach(spec(s, paths, null));
        if (vm.isPresent()) {
            String pid = Long.toString(vm.get().pid());
            try {
                for (String line : Files.readAllLines(Path.of("/proc", pid, "smaps_rollup"))) {
                    if (line.startsWith("Rss:")) {
                        rss = kib(line) * 1024;
                    } else if (line.startsWith("Pss:")) {
                        pss = kib(line) * 1024;
                    }
                }
                String[] stat = Files.readString(Path.of("/proc", pid, "stat"))
                        .replaceFirst("^.*\\) ", "")
                        .split(" ");
                cpu = (Long.parseLong(stat[11]) + Long.parseLong(stat[12])) / 100.0;
            } catch (IOException | RuntimeException e) {
                // The VMM exited between the check and the read: report zeros.
            }
        }
        return new ResourceUse(rss, pss, cpu, DiskLayer.allocatedBytes(writableLayer(paths)));
    }

    private static long kib(String smapsLine) {
        return Long.parseLong(smapsLine.replaceAll("[^0-9]", ""));
    }

    /**
     * The VM spec of a sandbox; {@code assets} may be null when only the paths are needed
     * (attach). A nat sandbox's VM has a NIC, its QEMU in the sandbox's {@link NatCgroup}.
     */
    VmSpec spec(Sandbox s, SandboxPaths paths, @Nullable BootAssets assets) {
        Path kernel = assets != null ? assets.kernel().vmlinux() : Path.of("/dev/null");
        Path initrd = assets != null ? assets.initrd() : Path.of("/dev/null");
        boolean shared = sharesRoot(s);
        String root = shared
                ? " airlock.root=9p:" + VmSpec.Disk.SHARE_TAG + "0"
                : " airlock.root=/dev/vda airlock.layer=/dev/vdb";
        Accel accel = Accel.parse(s.accel());
        String cmdline = "console=ttyS0 reboot=t panic=-1 pci=off quiet" + root
                + " airlock.hostname=" + s.name() + " airlock.pids="
                + s.resources().pids()
                // Only a VM that launches needs its clock (attach passes no assets).
                + (assets != null && accel == Accel.TCG ? clock.cmdline() : "");
        return new VmSpec(
                        kernel,
                        initrd,
                        cmdline,
                        shared
                                ? List.of(new VmSpec.Disk(Path.of(s.imageFile()), false))
                                : List.of(
                                        new VmSpec.Disk(Path.of(s.imageFile()), true),
                                        new VmSpec.Disk(paths.dir().resolve(LAYER), false)),
                        s.resources().cpus(),
                        s.resources().memoryMiB(),
                        accel,
                        paths.dir(),
                        paths.runtimeDir())
                .withNic(
                        s.nat() && assets != null
                                ? new VmSpec.Nic(NatCgroup.of(dirs, s.id()).procs())
                                : null);
    }

    /**
     * Whether the sandbox's root is a host directory (an OCI bundle's rootfs) shared into the VM
     * and written in place, rather than an image under a private disk layer.
     */
    private static boolean sharesRoot(Sandbox s) {
        return Files.isDirectory(Path.of(s.imageFile()));
    }

    /** The kernel, initramfs and accelerator every boot needs; runs setup first if they are missing. */
    synchronized BootAssets bootAssets() {
        BootAssets b = boot;
        if (b == null) {
            Optional<Kernel> kernel = new KernelBuild(dirs).cached();
            if (kernel.isEmpty()) {
                progress.step("this host is not set up yet: running airlock setup first");
                Setup.Report r = new Setup(dirs, progress).ensure();
                b = new BootAssets(r.kernel(), r.initrd(), r.accel());
            } else {
                Path initrd = GuestAgent.bundled(dirs).initramfs();
                AccelProbe.Decision d = new AccelProbe(dirs.cache(), vmm)
                        .decide(kernel.get().vmlinux(), kernel.get().key(), initrd, progress);
                b = new BootAssets(kernel.get(), initrd, d);
            }
            boot = b;
        }
        return b;
    }
}
