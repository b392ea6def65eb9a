package dev.airlock.sandbox;

import dev.airlock.container.ContainerBackend;
import dev.airlock.container.ImageMounts;
import dev.airlock.container.OciRuntime;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestIdentity;
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
import dev.airlock.setup.Setup;
import dev.airlock.vmm.AccelProbe;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.RunningVm;
import dev.airlock.vmm.VmSpec;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.jspecify.annotations.Nullable;

/**
 * Creates, starts, stops and removes microVM sandboxes. State lives in the {@link SandboxStore}
 * and in the VMM processes themselves, never only in this object's memory: any process can pick
 * up where another one (a crashed CLI or daemon) left off.
 */
public final class SandboxEngine {
    /** Boot under software emulation on a busy 2-core host can take tens of seconds. */
    static final Duration BOOT_TIMEOUT = Duration.ofSeconds(180);
    /** A restored VM answers within a second even under emulation; beyond this it is broken. */
    static final Duration RESTORE_TIMEOUT = Duration.ofSeconds(60);
    /** Marks a microVM layer nothing has booted from yet: such a sandbox may start from a template. */
    private static final String FRESH_LAYER = "fresh-layer";
    /** How the sandbox's VM last came up: cold, template KEY, resumed, fork of NAME. */
    private static final String ORIGIN = "origin";
    /** The saved VM of a paused sandbox. */
    private static final String PAUSED_STATE = "paused.state";

    private final AirlockDirs dirs;
    private final SandboxStore store;
    private final ImageStore images;
    private final QemuMicrovm vmm = new QemuMicrovm();
    private final Progress progress;
    private final MicrovmRuntime microvm;
    private final ContainerRuntime container;
    private final VmTemplates templates;
    private final boolean useTemplates;

    public SandboxEngine(AirlockDirs dirs, Progress progress) {
        // AIRLOCK_TEMPLATES=off boots every microVM cold (for comparison and for debugging).
        this(dirs, progress, !"off".equals(System.getenv("AIRLOCK_TEMPLATES")));
    }

    /** {@code useTemplates}: whether new microVM sandboxes start from VM templates. */
    public SandboxEngine(AirlockDirs dirs, Progress progress, boolean useTemplates) {
        this.dirs = dirs;
        this.store = new SandboxStore(dirs.sandboxes());
        this.images = new ImageStore(dirs);
        this.progress = progress;
        this.microvm = new MicrovmRuntime(vmm, this::bootAssets, dirs);
        this.container = new ContainerRuntime(
                new ContainerBackend(
                        OciRuntime.detect(dirs.runtime().resolve("oci")),
                        new ImageMounts(dirs.cache().resolve("mounts"))),
                () -> GuestAgent.bundled(dirs).binary(),
                BOOT_TIMEOUT,
                dirs);
        this.templates = new VmTemplates(dirs, microvm, progress);
        this.useTemplates = useTemplates;
    }

    private SandboxRuntime runtime(Sandbox s) {
        return s.runtime().equals(container.name()) ? container : microvm;
    }

    public SandboxStore store() {
        return store;
    }

    public Sandbox create(CreateOptions o) {
        Image image = images.require(o.image(), progress);
        boolean inContainer = o.runtime().equals("container");
        String accel = inContainer
                ? "none"
                : (o.accel() != null ? o.accel() : bootAssets().accel().accel()).flag();
        String id = Names.newId();
        try (HostFiles.Lock ignored = store.lock()) {
            String name = o.name();
            if (name != null) {
                Names.validate(name);
                String wanted = name;
                Optional<Sandbox> clash = store.list().stream()
                        .filter(s -> s.name().equals(wanted))
                        .findFirst();
                if (clash.isPresent()) {
                    throw new SandboxException(
                            SandboxException.Kind.CONFLICT,
                            "a sandbox named '" + name + "' already exists ("
                                    + clash.get().shortId()
                                    + ", " + clash.get().state().label()
                                    + "); choose another --name or remove it: airlock rm "
                                    + name);
                }
            } else {
                List<String> taken = store.list().stream().map(Sandbox::name).toList();
                String candidate;
                do {
                    candidate = Names.randomName();
                } while (taken.contains(candidate));
                name = candidate;
            }
            Sandbox fresh = new Sandbox(
                    id,
                    name,
                    o.runtime(),
                    image.name(),
                    image.id(),
                    image.file().toString(),
                    accel,
                    o.resources(),
                    o.env(),
                    o.workdir(),
                    Instant.now(),
                    SandboxState.CREATED,
                    0,
                    null,
                    null,
                    o.nat());
            String pooledKey = null;
            if (pool != null && !inContainer && o.layerTemplate() == null) {
                String key = templates.key(fresh, bootAssets(), null);
                Optional<String> claimed = pool.take(key, o.resources().memoryMiB());
                if (claimed.isPresent()) {
                    id = claimed.get();
                    fresh = fresh.withId(id);
                    pooledKey = key;
                }
            }
            Path dir = AirlockDirs.ensureDir(store.dir(id));
            try {
                if (pooledKey != null) {
                    // A warm-pool VM: restored, its layer in place; start hands it its identity.
                } else if (inContainer) {
                    Path template = o.layerTemplate();
                    if (template != null) {
                        copyUpper(template, dir.resolve("container").resolve("upper"));
                    }
                } else {
                    // The disk layer is made (or copied from a workspace's setup layer) at start:
                    // a start from a VM template brings the template's own layer instead.
                    Path layerTemplate = o.layerTemplate();
                    Files.writeString(dir.resolve(FRESH_LAYER), layerTemplate == null ? "" : layerTemplate.toString());
                }
                store.save(fresh);
                return fresh;
            } catch (IOException e) {
                endPooled(dir);
                HostFiles.deleteTree(dir);
                throw new SandboxException("cannot create sandbox files in " + dir + ": " + e.getMessage(), e);
            } catch (RuntimeException e) {
                endPooled(dir);
                HostFiles.deleteTree(dir);
                throw e;
            }
        }
    }

    /** Boots the sandbox's VM and returns once its agent answers. */
    public Sandbox start(String ref) {
        Sandbox s = inspect(ref);
        if (s.state() == SandboxState.RUNNING) {
            throw new SandboxException(SandboxException.Kind.CONFLICT, "sandbox '" + s.name() + "' is already running");
        }
        if (!Files.isRegularFile(Path.of(s.imageFile()))) {
            throw new SandboxException("the image of sandbox '" + s.name() + "' (" + s.image() + ", "
                    + s.imageId().substring(0, 12) + ") is gone; rebuild it with: airlock image build " + s.image());
        }
        if (s.state() == SandboxState.PAUSED) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "sandbox '" + s.name() + "' is paused; resume it with: airlock resume " + s.name());
        }
        SandboxRuntime rt = runtime(s);
        Path dir = store.dir(s.id());
        Launched launched;
        if (rt == microvm && Files.exists(dir.resolve(WarmPool.MARKER))) {
            launched = claimPooled(s, dir);
        } else if (rt == microvm && Files.exists(dir.resolve(FRESH_LAYER))) {
            launched = useTemplates ? startFromTemplate(s, dir) : bootFresh(s, dir);
        } else {
            launched = new Launched(rt.launch(s, dir, runtimeDir(s)), false);
            recordOrigin(dir, "cold");
        }
        HostFiles.deleteTree(dir.resolve(FRESH_LAYER));
        s = s.moveTo(SandboxState.RUNNING, launched.pid(), null);
        store.save(s);
        if (launched.answered()) {
            return s;
        }
        try (GuestChannel ignored = connect(s, BOOT_TIMEOUT)) {
            return s;
        } catch (IOException | RuntimeException e) {
            rt.kill(s, dir, runtimeDir(s));
            Sandbox failed = s.moveTo(SandboxState.FAILED, 0, "boot failed: " + e.getMessage());
            store.save(failed);
            throw new SandboxException(
                    "sandbox '" + s.name() + "' did not boot: " + e.getMessage() + consoleTail(s), e);
        }
    }

    /**
     * Restores a never-booted microVM sandbox from the template of its configuration (building
     * it first when there is none) and gives it its own identity. Anything wrong with the
     * template is reported, the template deleted, and the sandbox booted cold instead: a start
     * never returns a half-restored VM. Returns the VMM's pid.
     */
    private Launched startFromTemplate(Sandbox s, Path dir) {
        BootAssets boot = bootAssets();
        Path layerTemplate = freshLayerTemplate(dir);
        String key = templates.key(s, boot, layerTemplate);
        long ramBytes = (long) s.resources().memoryMiB() << 20;
        boolean existed = Files.isDirectory(templates.root().resolve(key));
        Optional<VmTemplates.Template> found = templates.find(key, ramBytes);
        // A template that was there but failed its checks was just deleted with a warning: this
        // start boots cold and the next one rebuilds it.
        if (found.isEmpty() && !existed) {
            // One build per key at a time (across threads and processes): many sandboxes started
            // at once wait for the first one's template instead of all booting their own.
            try (HostFiles.Lock ignored = HostFiles.lock(templates.root().resolve(key + ".lock"))) {
                found = templates.find(key, ramBytes);
                if (found.isEmpty()) {
                    found = Optional.of(templates.build(key, s, boot, layerTemplate, BOOT_TIMEOUT));
                }
            } catch (RuntimeException e) {
                progress.step("warning: cannot build a VM template (" + e.getMessage() + "); booting cold");
            }
        }
        if (found.isPresent()) {
            VmTemplates.Template t = found.get();
            try {
                long pid = restoreFrom(s, dir, t.layer(), t.ram(), t.state(), true);
                recordOrigin(dir, "template " + key);
                WarmPool p = pool;
                // Pooled VMs serve plain creates only: a workspace's setup layer is not theirs.
                if (p != null && layerTemplate == null) {
                    p.refill(key, s);
                }
                return new Launched(pid, true);
            } catch (RuntimeException e) {
                templates.discard(key, "restoring from it failed (" + e.getMessage() + ")");
            }
        }
        return bootFresh(s, dir);
    }

    /** Boots a never-started microVM sandbox cold, on a new layer (or a copy of its workspace's setup layer). */
    private Launched bootFresh(Sandbox s, Path dir) {
        freshLayer(dir.resolve("layer.ext4"), s.resources().diskMiB(), freshLayerTemplate(dir));
        long pid = microvm.launch(s, dir, runtimeDir(s));
        recordOrigin(dir, "cold");
        return new Launched(pid, false);
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

    /** A VMM just started: its pid, and whether its agent has already answered (restores talk to it). */
    private record Launched(long pid, boolean answered) {}

    /**
     * Hands a warm-pool VM its identity. If it is gone or does not answer, the sandbox starts
     * from its template (or cold) as if it had never been pooled.
     */
    private Launched claimPooled(Sandbox s, Path dir) {
        String key = WarmPool.keyOf(dir);
        HostFiles.deleteTree(dir.resolve(WarmPool.MARKER));
        try {
            if (!microvm.running(s, dir, runtimeDir(s))) {
                throw new SandboxException("its VM exited");
            }
            try (GuestChannel ch = GuestChannel.connect(microvm.agentSocket(runtimeDir(s)), RESTORE_TIMEOUT)) {
                ch.setIdentity(GuestIdentity.fresh(s.name()));
            }
            long pid = Long.parseLong(Files.readString(dir.resolve("vmm.pid")).strip());
            recordOrigin(dir, "pool, template " + key);
            WarmPool p = pool;
            if (p != null) {
                p.refill(key, s);
            }
            return new Launched(pid, true);
        } catch (IOException | RuntimeException e) {
            progress.step(
                    "warning: warm-pool VM for " + s.name() + " unusable (" + e.getMessage() + "); restoring anew");
            microvm.kill(s, dir, runtimeDir(s));
        } catch (InterruptedException e) {
            microvm.kill(s, dir, runtimeDir(s));
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while starting sandbox " + s.name(), e);
        }
        try {
            Files.writeString(dir.resolve(FRESH_LAYER), "");
        } catch (IOException e) {
            throw new SandboxException("cannot write in " + dir + ": " + e.getMessage(), e);
        }
        return useTemplates ? startFromTemplate(s, dir) : bootFresh(s, dir);
    }

    private @Nullable WarmPool pool;

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

    /** Ends every pooled VM (ready ones of this engine and any a previous process left). */
    public synchronized void closeWarmPool(Duration wait) throws InterruptedException {
        WarmPool p = pool;
        pool = null;
        if (p != null) {
            p.awaitIdle(wait);
            p.drain();
        }
        sweepWarmPool();
    }

    /** Waits until the warm pool has no restore under way (tests, benchmarks). */
    public void awaitWarmPool(Duration timeout) throws InterruptedException {
        WarmPool p = pool;
        if (p != null) {
            p.awaitIdle(timeout);
        }
    }

    private void sweepWarmPool() {
        for (Path d : WarmPool.leftovers(dirs.sandboxes())) {
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
        Sandbox s = new Sandbox(
                id,
                "airlock",
                like.runtime(),
                like.image(),
                like.imageId(),
                like.imageFile(),
                like.accel(),
                like.resources(),
                like.env(),
                like.workdir(),
                Instant.now(),
                SandboxState.CREATED,
                0,
                null,
                null,
                like.nat());
        VmTemplates.Template t = templates
                .find(key, (long) s.resources().memoryMiB() << 20)
                .orElseThrow(() -> new SandboxException("template " + key + " is gone"));
        Path dir = AirlockDirs.ensureDir(store.dir(id));
        restoreFrom(s, dir, t.layer(), t.ram(), t.state(), false);
        // Under emulation the first exec after a restore pays for translating the guest's code:
        // pay it here, not in the claim.
        try (GuestChannel ch = GuestChannel.connect(microvm.agentSocket(runtimeDir(s)), RESTORE_TIMEOUT)) {
            ch.exec(
                            dev.airlock.guest.ExecSpec.of("true"),
                            java.io.OutputStream.nullOutputStream(),
                            java.io.OutputStream.nullOutputStream())
                    .await();
        } catch (IOException e) {
            throw new SandboxException("the pooled VM did not run a command: " + e.getMessage(), e);
        } catch (InterruptedException e) {
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
            Sandbox s, Path dir, @Nullable Path layer, @Nullable Path ram, Path state, boolean newIdentity) {
        if (layer != null) {
            HostFiles.deleteTree(dir.resolve("layer.ext4"));
            copyLayer(layer, dir.resolve("layer.ext4"), 0);
        }
        VmSpec.GuestMemory memory =
                ram == null ? new VmSpec.GuestMemory.Anonymous() : new VmSpec.GuestMemory.File(ram, false);
        long pid = microvm.restore(s, dir, runtimeDir(s), memory, new VmSpec.Restore(state, ram != null, true));
        try (GuestChannel ch = GuestChannel.connect(microvm.agentSocket(runtimeDir(s)), RESTORE_TIMEOUT)) {
            ch.setIdentity(
                    newIdentity
                            ? GuestIdentity.fresh(s.name())
                            : new GuestIdentity(GuestIdentity.fresh(s.name()).entropy(), null, null));
            return pid;
        } catch (IOException | RuntimeException e) {
            microvm.kill(s, dir, runtimeDir(s));
            throw new SandboxException("the restored VM did not take its identity: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            microvm.kill(s, dir, runtimeDir(s));
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while restoring sandbox " + s.name(), e);
        }
    }

    /** Where VM templates are kept (tests damage them on purpose). */
    public Path templateDir() {
        return templates.root();
    }

    private static void recordOrigin(Path dir, String origin) {
        HostFiles.writeAtomically(dir.resolve(ORIGIN), origin.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** How the sandbox's VM last came up: {@code cold}, {@code template KEY}, {@code resumed} or {@code fork of NAME}. */
    public String origin(Sandbox s) {
        try {
            return Files.readString(store.dir(s.id()).resolve(ORIGIN)).strip();
        } catch (IOException e) {
            return s.runtime().equals("container") ? "container" : "none";
        }
    }

    /** Opens a new agent session to a running sandbox, straight to its VM's agent socket. */
    public GuestChannel connect(Sandbox s, Duration timeout) throws IOException {
        if (s.state() != SandboxState.RUNNING) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "sandbox '" + s.name() + "' is " + s.state().label() + "; start it with: airlock start "
                            + s.name());
        }
        return GuestChannel.connect(agentSocket(s), timeout);
    }

    public Path agentSocket(Sandbox s) {
        return runtime(s).agentSocket(runtimeDir(s));
    }

    /**
     * Saves a running microVM sandbox to its directory (memory, devices; its disk is already
     * there) and ends its VMM, so it holds no host memory until {@link #resume}.
     */
    public Sandbox pause(String ref) {
        Sandbox s = inspect(ref);
        requireMicrovm(s, "pause");
        if (s.state() != SandboxState.RUNNING) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "sandbox '" + s.name() + "' is " + s.state().label() + "; only a running sandbox can be paused");
        }
        Path dir = store.dir(s.id());
        RunningVm vm = microvm.vm(s, dir, runtimeDir(s));
        Path state = dir.resolve(PAUSED_STATE);
        try {
            vm.saveState(state, false);
        } catch (RuntimeException e) {
            HostFiles.deleteTree(state);
            vm.resume();
            throw new SandboxException("cannot pause sandbox '" + s.name() + "': " + e.getMessage(), e);
        }
        // Recorded before the VMM goes, so nobody looking meanwhile takes the exit for a crash.
        Sandbox paused = s.moveTo(SandboxState.PAUSED, 0, null);
        store.save(paused);
        vm.kill();
        return paused;
    }

    /** Brings a paused sandbox back, its processes where they were; the guest clock is set to now. */
    public Sandbox resume(String ref) {
        Sandbox s = inspect(ref);
        requireMicrovm(s, "resume");
        if (s.state() != SandboxState.PAUSED) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "sandbox '" + s.name() + "' is " + s.state().label() + ", not paused");
        }
        Path dir = store.dir(s.id());
        long pid;
        try {
            pid = restoreFrom(s, dir, null, null, dir.resolve(PAUSED_STATE), false);
        } catch (RuntimeException e) {
            store.save(s.moveTo(
                    SandboxState.FAILED,
                    0,
                    "resume failed: " + e.getMessage() + "; its disk is kept: airlock start " + s.name()
                            + " boots it again (without its processes)"));
            throw new SandboxException("cannot resume sandbox '" + s.name() + "': " + e.getMessage(), e);
        }
        HostFiles.deleteTree(dir.resolve(PAUSED_STATE));
        recordOrigin(dir, "resumed");
        Sandbox running = s.moveTo(SandboxState.RUNNING, pid, null);
        store.save(running);
        return running;
    }

    /**
     * Clones a running microVM sandbox {@code names.size()} times: memory, processes and files as
     * they were at one instant, each clone with its own copy of the writable layer and its own
     * identity. The source is stopped only while its state is written.
     *
     * <p>How: the source's full migration stream is saved (its RAM is private, so all of it goes in
     * the stream), loaded once into a stopped VM whose RAM is a shared file, and saved again from
     * there with {@code x-ignore-shared}; the clones then map that RAM file privately, like a
     * template, sharing every page none of them has written.
     */
    public List<Sandbox> fork(String ref, List<String> names) {
        Sandbox src = inspect(ref);
        requireMicrovm(src, "fork");
        if (src.state() != SandboxState.RUNNING) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "sandbox '" + src.name() + "' is " + src.state().label()
                            + "; only a running sandbox can be forked");
        }
        if (names.isEmpty() || names.size() > 64) {
            throw new SandboxException("a fork makes 1 to 64 clones, not " + names.size());
        }
        List<Sandbox> clones = new java.util.ArrayList<>();
        try (HostFiles.Lock ignored = store.lock()) {
            List<String> taken = store.list().stream().map(Sandbox::name).toList();
            for (String name : names) {
                Names.validate(name);
                if (taken.contains(name) || names.indexOf(name) != names.lastIndexOf(name)) {
                    throw new SandboxException(
                            SandboxException.Kind.CONFLICT,
                            "a sandbox named '" + name
                                    + "' already exists; choose other names or remove it: airlock rm " + name);
                }
            }
            for (String name : names) {
                Sandbox c = new Sandbox(
                        Names.newId(),
                        name,
                        src.runtime(),
                        src.image(),
                        src.imageId(),
                        src.imageFile(),
                        src.accel(),
                        src.resources(),
                        src.env(),
                        src.workdir(),
                        Instant.now(),
                        SandboxState.CREATED,
                        0,
                        null,
                        null,
                        src.nat());
                AirlockDirs.ensureDir(store.dir(c.id()));
                store.save(c);
                clones.add(c);
            }
        }
        Path work = AirlockDirs.ensureDir(
                dirs.data().resolve("forks").resolve(Names.newId().substring(0, 16)));
        Path convertRuntime =
                dirs.runtime().resolve("frk-" + work.getFileName().toString().substring(0, 12));
        try {
            Path srcDir = store.dir(src.id());
            RunningVm vm = microvm.vm(src, srcDir, runtimeDir(src));
            try {
                vm.saveState(work.resolve("full.state"), false);
                copyLayer(srcDir.resolve("layer.ext4"), work.resolve("layer.ext4"), 0);
            } finally {
                vm.resume();
            }
            VmSpec convert = microvm.spec(src, work, convertRuntime, bootAssets())
                    .withMemory(
                            new VmSpec.GuestMemory.File(work.resolve("ram"), true),
                            new VmSpec.Restore(work.resolve("full.state"), false, false));
            RunningVm loaded = vmm.launch(convert);
            try {
                loaded.saveState(work.resolve("state"), true);
            } finally {
                loaded.kill();
            }
            HostFiles.deleteTree(work.resolve("full.state"));
            List<java.util.concurrent.Future<Sandbox>> started = new java.util.ArrayList<>();
            try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
                for (Sandbox c : clones) {
                    started.add(pool.submit(() -> startClone(c, src, work)));
                }
            }
            List<Sandbox> out = new java.util.ArrayList<>();
            List<String> failed = new java.util.ArrayList<>();
            for (int i = 0; i < clones.size(); i++) {
                try {
                    out.add(started.get(i).get());
                } catch (java.util.concurrent.ExecutionException | InterruptedException e) {
                    failed.add(clones.get(i).name() + " ("
                            + (e.getCause() != null ? e.getCause().getMessage() : e) + ")");
                }
            }
            if (!failed.isEmpty()) {
                throw new SandboxException("fork of '" + src.name() + "': " + failed.size() + " of " + clones.size()
                        + " clones did not start: " + String.join(", ", failed));
            }
            return out;
        } catch (RuntimeException e) {
            for (Sandbox c : clones) {
                Sandbox now = store.find(c.id()).orElse(c);
                if (now.state() == SandboxState.CREATED) {
                    store.save(now.moveTo(SandboxState.FAILED, 0, "fork failed: " + e.getMessage()));
                }
            }
            throw e instanceof SandboxException se
                    ? se
                    : new SandboxException("cannot fork sandbox '" + src.name() + "': " + e.getMessage(), e);
        } finally {
            // Clones keep the RAM file mapped; deleting its name frees it when the last one exits.
            HostFiles.deleteTree(work);
            HostFiles.deleteTree(convertRuntime);
        }
    }

    private Sandbox startClone(Sandbox c, Sandbox src, Path work) {
        Path dir = store.dir(c.id());
        try {
            long pid =
                    restoreFrom(c, dir, work.resolve("layer.ext4"), work.resolve("ram"), work.resolve("state"), true);
            recordOrigin(dir, "fork of " + src.name());
            Sandbox running = c.moveTo(SandboxState.RUNNING, pid, null);
            store.save(running);
            return running;
        } catch (RuntimeException e) {
            // The layer copy (if made) holds the source's files: start boots it cold.
            store.save(c.moveTo(SandboxState.FAILED, 0, "fork failed: " + e.getMessage()));
            throw e;
        }
    }

    private static void requireMicrovm(Sandbox s, String what) {
        if (s.runtime().equals("container")) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    what + " works on microVM sandboxes only; '" + s.name() + "' is a container");
        }
    }

    /** Asks the guest to power off, and kills the VM if it has not within {@code grace}. */
    public Sandbox stop(String ref, Duration grace) {
        Sandbox s = inspect(ref);
        if (s.state() == SandboxState.PAUSED) {
            // The guest's unwritten files are in its saved memory, not yet on its disk: bring it
            // back so it can shut down cleanly.
            s = resume(s.id());
        }
        if (s.state() != SandboxState.RUNNING) {
            return s;
        }
        SandboxRuntime rt = runtime(s);
        Path dir = store.dir(s.id());
        if (rt.running(s, dir, runtimeDir(s))) {
            try (GuestChannel ch = connect(s, Duration.ofSeconds(10))) {
                ch.shutdown();
            } catch (IOException | RuntimeException e) {
                progress.step("sandbox " + s.name() + ": the agent did not take the shutdown request (" + e.getMessage()
                        + "); killing it");
            }
            rt.awaitStop(s, dir, runtimeDir(s), grace);
        }
        rt.release(s, dir, runtimeDir(s));
        Sandbox stopped = s.moveTo(SandboxState.STOPPED, 0, null);
        store.save(stopped);
        return stopped;
    }

    public Sandbox kill(String ref) {
        Sandbox s = inspect(ref);
        if (s.state() != SandboxState.RUNNING) {
            throw new SandboxException(SandboxException.Kind.CONFLICT, "sandbox '" + s.name() + "' is not running");
        }
        runtime(s).kill(s, store.dir(s.id()), runtimeDir(s));
        Sandbox stopped = s.moveTo(SandboxState.STOPPED, 0, "killed");
        store.save(stopped);
        return stopped;
    }

    /** Deletes the sandbox and its disk. A running sandbox needs {@code force}. */
    public Sandbox remove(String ref, boolean force) {
        Sandbox s = inspect(ref);
        if (s.state() == SandboxState.RUNNING) {
            if (!force) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT,
                        "sandbox '" + s.name() + "' is running; stop it first (airlock stop " + s.name()
                                + ") or force removal with: airlock rm -f " + s.name());
            }
            runtime(s).kill(s, store.dir(s.id()), runtimeDir(s));
        }
        runtime(s).release(s, store.dir(s.id()), runtimeDir(s));
        store.delete(s.id());
        HostFiles.deleteTree(runtimeDir(s));
        return s;
    }

    /** A sandbox with its state checked against reality: a RUNNING one whose VMM died is FAILED. */
    public Sandbox inspect(String ref) {
        return refresh(store.require(ref));
    }

    public List<Sandbox> list() {
        return store.list().stream().map(this::refresh).toList();
    }

    /** The writable layer of a sandbox (for saving a stopped sandbox's disk as a template). */
    public Path layer(Sandbox s) {
        return layer(store.dir(s.id()), s.runtime());
    }

    /** A microVM's layer is its disk file; a container's is its overlay upper directory. */
    public static Path layer(Path sandboxDir, String runtime) {
        return runtime.equals("container")
                ? sandboxDir.resolve("container").resolve("upper")
                : sandboxDir.resolve("layer.ext4");
    }

    public Path consoleLog(String ref) {
        return store.dir(inspect(ref).id()).resolve("console.log");
    }

    public SandboxStats stats(String ref) {
        Sandbox s = inspect(ref);
        long rss = 0;
        long pss = 0;
        double cpu = 0;
        if (s.state() == SandboxState.RUNNING) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc", Long.toString(s.vmmPid()), "smaps_rollup"))) {
                    if (line.startsWith("Rss:")) {
                        rss = kib(line) * 1024;
                    } else if (line.startsWith("Pss:")) {
                        pss = kib(line) * 1024;
                    }
                }
                String[] stat = Files.readString(Path.of("/proc", Long.toString(s.vmmPid()), "stat"))
                        .replaceFirst("^.*\\) ", "")
                        .split(" ");
                cpu = (Long.parseLong(stat[11]) + Long.parseLong(stat[12])) / 100.0;
            } catch (IOException | RuntimeException e) {
                // The VMM exited between the check and the read: report zeros.
            }
        }
        Path layer = store.dir(s.id()).resolve("layer.ext4");
        long used = 0;
        HostCommand.Result du = HostCommand.run(List.of("stat", "-c", "%b %B", layer.toString()), null, null);
        if (du.ok()) {
            String[] f = du.output().strip().split(" ");
            used = Long.parseLong(f[0]) * Long.parseLong(f[1]);
        }
        return new SandboxStats(
                s.name(),
                s.state().label(),
                rss,
                pss,
                cpu,
                used,
                s.resources().diskMiB() << 20,
                s.resources().memoryMiB(),
                s.resources().cpus());
    }

    private static long kib(String smapsLine) {
        return Long.parseLong(smapsLine.replaceAll("[^0-9]", ""));
    }

    private Sandbox refresh(Sandbox s) {
        if (s.state() != SandboxState.RUNNING || runtime(s).running(s, store.dir(s.id()), runtimeDir(s))) {
            return s;
        }
        Sandbox failed = s.moveTo(
                SandboxState.FAILED,
                0,
                "the VM process (pid " + s.vmmPid()
                        + ") exited unexpectedly; the sandbox's disk is kept: start it again with airlock start "
                        + s.name()
                        + ", or delete it with airlock rm " + s.name());
        store.update(failed);
        return failed;
    }

    private String consoleTail(Sandbox s) {
        try {
            List<String> lines = Files.readAllLines(store.dir(s.id()).resolve("console.log"));
            return "\nlast console lines:\n  "
                    + String.join("\n  ", lines.subList(Math.max(0, lines.size() - 10), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }

    /** Where the sandbox's sockets live (agent, QMP, and the daemon's shared agent socket). */
    public Path runtimeDir(Sandbox s) {
        return dirs.runtime().resolve(s.id().substring(0, 16));
    }

    /** The kernel, initramfs and accelerator every boot needs; runs setup first if they are missing. */
    record BootAssets(Kernel kernel, Path initrd, AccelProbe.Decision accel) {}

    private @Nullable BootAssets boot;

    synchronized BootAssets bootAssets() {
        if (boot == null) {
            Optional<Kernel> kernel = new KernelBuild(dirs).cached();
            if (kernel.isEmpty()) {
                progress.step("this host is not set up yet: running airlock setup first");
                Setup.Report r = new Setup(dirs, progress).ensure();
                boot = new BootAssets(r.kernel(), r.initrd(), r.accel());
            } else {
                Path initrd = GuestAgent.bundled(dirs).initramfs();
                AccelProbe.Decision d = new AccelProbe(dirs.cache(), vmm)
                        .decide(kernel.get().vmlinux(), kernel.get().key(), initrd, progress);
                boot = new BootAssets(kernel.get(), initrd, d);
            }
        }
        return boot;
    }

    /** A container template's upper directory, copied with its overlay whiteouts and xattrs. */
    private static void copyUpper(Path template, Path upper) {
        if (!Files.isDirectory(template)) {
            throw new SandboxException("the workspace template " + template + " is not a container layer");
        }
        AirlockDirs.ensureDir(upper.resolveSibling("."));
        HostCommand.Result cp = HostCommand.run(
                List.of("cp", "-a", "--reflink=auto", template.toString(), upper.toString()), null, null);
        if (!cp.ok()) {
            throw new SandboxException("cannot copy the workspace template " + template + ": "
                    + cp.output().strip());
        }
    }

    /** The layer of a template, copied sparsely (shared blocks where the filesystem can reflink). */
    private static void copyLayer(Path template, Path file, long diskMiB) {
        try {
            HostFiles.copySparse(template, file);
        } catch (IOException e) {
            throw new SandboxException("cannot copy the disk layer " + template + ": " + e.getMessage(), e);
        }
        try {
            if (Files.size(file) < (diskMiB << 20)) {
                try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
                    f.setLength(diskMiB << 20);
                }
                HostCommand.Result grow = HostCommand.run(List.of("resize2fs", "-f", file.toString()), null, null);
                if (!grow.ok()) {
                    throw new SandboxException("cannot grow the sandbox disk " + file + ": "
                            + grow.output().strip());
                }
            }
        } catch (IOException e) {
            throw new SandboxException("cannot size the sandbox disk " + file + ": " + e.getMessage(), e);
        }
    }

    /** A sandbox's writable layer made anew: empty, or a copy of a workspace's setup layer grown to the disk limit. */
    static void freshLayer(Path file, long diskMiB, @Nullable Path template) {
        HostFiles.deleteTree(file);
        if (template == null) {
            makeLayer(file, diskMiB);
        } else {
            copyLayer(template, file, diskMiB);
        }
    }

    /** A sparse file formatted as ext4: the sandbox's writable layer, as large as its disk limit. */
    static void makeLayer(Path file, long diskMiB) {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(diskMiB << 20);
        } catch (IOException e) {
            throw new SandboxException("cannot create the sandbox disk " + file + ": " + e.getMessage(), e);
        }
        HostCommand.Result r = HostCommand.run(
                List.of(
                        "mkfs.ext4",
                        "-q",
                        "-F",
                        "-m",
                        "0",
                        "-E",
                        "lazy_itable_init=1,lazy_journal_init=1",
                        file.toString()),
                null,
                null);
        if (!r.ok()) {
            throw new SandboxException(
                    "cannot format the sandbox disk " + file + ": " + r.output().strip());
        }
    }
}
