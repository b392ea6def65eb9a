package dev.airlock.engine;

import dev.airlock.backend.Backend;
import dev.airlock.backend.Backends;
import dev.airlock.backend.Capability;
import dev.airlock.backend.CloneResult;
import dev.airlock.backend.Launch;
import dev.airlock.backend.ResourceUse;
import dev.airlock.backend.SandboxPaths;
import dev.airlock.engine.Lifecycle.Operation;
import dev.airlock.engine.Lifecycle.Verdict;
import dev.airlock.guest.AgentEndpoint;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Failpoint;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Names;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.sandbox.SandboxStats;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.jspecify.annotations.Nullable;

/**
 * The lifecycle of sandboxes, whatever runs them: records in the {@link SandboxStore}, the
 * rules of {@link Lifecycle}, and the calls into each sandbox's {@link Backend}. State lives on
 * disk and in the backends' processes, never only in this object's memory: any process can pick
 * up where another one (a crashed CLI or daemon) left off. Nothing here knows which backend it
 * talks to.
 */
public final class SandboxEngine {
    /** Boot under software emulation on a busy 2-core host can take tens of seconds. */
    public static final Duration BOOT_TIMEOUT = Duration.ofSeconds(180);
    /** How the sandbox last came up, as its backend said: cold, template KEY, resumed, fork of NAME. */
    private static final String ORIGIN = "origin";

    private final AirlockDirs dirs;
    private final SandboxStore store;
    private final ImageStore images;
    private final Backends backends;
    private final Progress progress;
    /**
     * Sandboxes being stopped, killed or removed: their process ends on purpose, and a
     * concurrent {@link #refresh} (a list, the daemon's watchdog) must not record that as a crash.
     */
    private final Set<String> ending = ConcurrentHashMap.newKeySet();

    public SandboxEngine(AirlockDirs dirs, Backends backends, Progress progress) {
        this.dirs = dirs;
        this.store = new SandboxStore(dirs.sandboxes());
        this.images = new ImageStore(dirs);
        this.backends = backends;
        this.progress = progress;
    }

    public SandboxStore store() {
        return store;
    }

    public Backends backends() {
        return backends;
    }

    /** The backend a sandbox runs on. */
    public Backend backend(Sandbox s) {
        return backends.of(s);
    }

    public Sandbox create(CreateOptions o) {
        Backend backend = backends.forNew(o.runtime() != null ? o.runtime() : backends.defaultName());
        if (o.nat() && !backend.capabilities().contains(Capability.NAT)) {
            throw new SandboxException("--network nat is not available on the " + backend.name() + " runtime");
        }
        if (!o.namespaces().isEmpty() && !backend.capabilities().contains(Capability.JOIN_NAMESPACES)) {
            throw new SandboxException("joining namespaces by path ("
                    + String.join(", ", o.namespaces().keySet())
                    + ") is not available on the " + backend.name() + " runtime: a sandbox of it has its own kernel"
                    + " or namespaces; use the container runtime");
        }
        Image image = images.require(o.image(), progress);
        String accel = backend.accel(o.accel());
        try (HostFiles.Lock ignored = store.lock()) {
            String name = uniqueName(o.name());
            Sandbox fresh = new Sandbox(
                    Names.newId(),
                    name,
                    backend.name(),
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
                    o.nat(),
                    o.user(),
                    o.command(),
                    o.namespaces());
            // a ready instance already has namespaces of its own
            Optional<String> ready = o.layerTemplate() == null && o.namespaces().isEmpty()
                    ? backend.claimReady(fresh)
                    : Optional.empty();
            if (ready.isPresent()) {
                fresh = fresh.withId(ready.get());
            }
            SandboxPaths paths = paths(fresh);
            AirlockDirs.ensureOwnerOnlyDir(paths.dir());
            try {
                if (ready.isEmpty()) {
                    backend.prepare(fresh, paths, o.layerTemplate());
                }
                store.save(fresh);
                return fresh;
            } catch (RuntimeException e) {
                try {
                    backend.kill(fresh, paths);
                    backend.releaseForRemoval(fresh, paths);
                    HostFiles.deleteTree(paths.dir());
                } catch (RuntimeException cleanup) {
                    e.addSuppressed(cleanup);
                }
                throw e;
            }
        }
    }

    /** The name asked for (checked and free), or a random one no sandbox has. Call with the store locked. */
    private String uniqueName(@Nullable String asked) {
        List<Sandbox> all = store.list();
        if (asked != null) {
            Names.validate(asked);
            Optional<Sandbox> clash =
                    all.stream().filter(s -> s.name().equals(asked)).findFirst();
            if (clash.isPresent()) {
                throw SandboxException.conflict("a sandbox named '" + asked + "' already exists ("
                        + clash.get().shortId() + ", " + clash.get().state().label()
                        + "); choose another --name or remove it: airlock rm " + asked);
            }
            return asked;
        }
        List<String> taken = all.stream().map(Sandbox::name).toList();
        String candidate;
        do {
            candidate = Names.randomName();
        } while (taken.contains(candidate));
        return candidate;
    }

    /** Brings a sandbox up and returns once its agent answers. */
    public Sandbox start(String ref) {
        Sandbox s = inspect(ref);
        Lifecycle.check(Operation.START, s);
        if (!Files.isRegularFile(Path.of(s.imageFile())) && !Files.isDirectory(Path.of(s.imageFile()))) {
            throw SandboxException.conflict("the image of sandbox '" + s.name() + "' (" + s.image() + ", "
                    + s.imageId().substring(0, 12) + ") is gone; " + images.howToRestore(s.image(), s.imageId()));
        }
        Backend backend = backends.of(s);
        SandboxPaths paths = paths(s);
        Launch launch;
        try {
            launch = backend.start(s, paths);
        } catch (SandboxException e) {
            if (e.kind() != SandboxException.Kind.FAILED && e.kind() != SandboxException.Kind.UNAVAILABLE) {
                throw e;
            }
            // the runtime failed its own start: say which others run here
            throw new SandboxException(e.kind(), e.getMessage() + backends.alternatives(s.runtime()), e);
        }
        recordOrigin(paths, launch.origin());
        s = s.moveTo(SandboxState.RUNNING, launch.pid(), null);
        if (launch.recordMayLapse()) {
            store.saveUndurably(s);
        } else {
            store.save(s);
        }
        if (launch.agentAnswered()) {
            return s;
        }
        try (GuestChannel ignored = GuestChannel.connect(backend.agent(s, paths), BOOT_TIMEOUT)) {
            return s;
        } catch (IOException | RuntimeException e) {
            backend.kill(s, paths);
            store.save(s.moveTo(SandboxState.FAILED, 0, "boot failed: " + e.getMessage()));
            throw new SandboxException(
                    "sandbox '" + s.name() + "' did not boot: " + e.getMessage() + logTail(backend, paths), e);
        }
    }

    /** Asks the guest to power off, and kills it if it has not within {@code grace}. */
    public Sandbox stop(String ref, Duration grace) {
        Sandbox s = inspect(ref);
        Verdict v = Lifecycle.check(Operation.STOP, s);
        if (v == Verdict.NOTHING) {
            return s;
        }
        if (v == Verdict.RESUME_FIRST) {
            s = resume(s.id());
        }
        beginEnding(s.id());
        try {
            Backend backend = backends.of(s);
            SandboxPaths paths = paths(s);
            if (backend.running(s, paths)) {
                try (GuestChannel ch = GuestChannel.connect(backend.agent(s, paths), Duration.ofSeconds(10))) {
                    ch.shutdown();
                } catch (IOException | RuntimeException e) {
                    progress.step("sandbox " + s.name() + ": the agent did not take the shutdown request ("
                            + e.getMessage() + "); killing it");
                }
                backend.awaitStop(s, paths, grace);
            }
            backend.release(s, paths);
            Sandbox stopped = s.moveTo(SandboxState.STOPPED, 0, null);
            store.save(stopped);
            return stopped;
        } finally {
            ending.remove(s.id());
        }
    }

    public Sandbox kill(String ref) {
        Sandbox s = inspect(ref);
        Lifecycle.check(Operation.KILL, s);
        beginEnding(s.id());
        try {
            backends.of(s).kill(s, paths(s));
            Sandbox stopped = s.moveTo(SandboxState.STOPPED, 0, "killed");
            store.save(stopped);
            return stopped;
        } finally {
            ending.remove(s.id());
        }
    }

    /** Deletes the sandbox and its disk. A running sandbox needs {@code force}. */
    public Sandbox remove(String ref, boolean force) {
        Sandbox s = inspect(ref);
        Lifecycle.check(force ? Operation.FORCE_REMOVE : Operation.REMOVE, s);
        beginEnding(s.id());
        try {
            Backend backend = backends.of(s);
            SandboxPaths paths = paths(s);
            if (s.state() == SandboxState.RUNNING) {
                backend.kill(s, paths);
            }
            backend.releaseForRemoval(s, paths);
            backend.discardPaused(paths);
            store.delete(s.id());
            HostFiles.deleteTree(paths.runtimeDir());
            return s;
        } finally {
            ending.remove(s.id());
        }
    }

    /**
     * Saves a running sandbox (memory, processes; its disk is already there) and ends its
     * process, so it holds no host memory until {@link #resume}.
     */
    public Sandbox pause(String ref) {
        Sandbox s = inspect(ref);
        Backend backend = requireCapability(s, Capability.PAUSE);
        Lifecycle.check(Operation.PAUSE, s);
        Sandbox paused = s.moveTo(SandboxState.PAUSED, 0, null);
        try (OperationMarker ignored = OperationMarker.begin(paths(s).dir(), OperationMarker.Operation.PAUSE)) {
            backend.pause(s, paths(s), () -> store.saveCommitted(paused));
        } catch (SandboxException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new SandboxException("cannot pause sandbox '" + s.name() + "': " + e.getMessage(), e);
        }
        return paused;
    }

    /** Brings a paused sandbox back, its processes where they were. */
    public Sandbox resume(String ref) {
        Sandbox s = inspect(ref);
        Backend backend = requireCapability(s, Capability.PAUSE);
        Lifecycle.check(Operation.RESUME, s);
        SandboxPaths paths = paths(s);
        try (OperationMarker ignored = OperationMarker.begin(paths.dir(), OperationMarker.Operation.RESUME)) {
            Launch launch;
            try {
                launch = backend.resume(s, paths);
            } catch (RuntimeException e) {
                store.save(s.moveTo(
                        SandboxState.FAILED,
                        0,
                        "resume failed: " + e.getMessage() + "; its disk is kept: airlock start " + s.name()
                                + " boots it again (without its processes)"));
                throw new SandboxException("cannot resume sandbox '" + s.name() + "': " + e.getMessage(), e);
            }
            recordOrigin(paths, launch.origin());
            Sandbox running = s.moveTo(SandboxState.RUNNING, launch.pid(), null);
            store.save(running);
            // Only now that the record says RUNNING may the saved state go: a crash before this
            // point leaves a paused sandbox that can be resumed again.
            backend.discardPaused(paths);
            return running;
        }
    }

    /**
     * Clones a running sandbox {@code names.size()} times: memory, processes and files as they
     * were at one instant, each clone with its own copy of the writable layer and its own
     * identity. Clones that failed are recorded as such and reported together.
     */
    public List<Sandbox> fork(String ref, List<String> names) {
        Sandbox src = inspect(ref);
        Backend backend = requireCapability(src, Capability.FORK);
        Lifecycle.check(Operation.FORK, src);
        if (names.isEmpty() || names.size() > 64) {
            throw new SandboxException("a fork makes 1 to 64 clones, not " + names.size());
        }
        List<Backend.Clone> clones = new ArrayList<>();
        // Held until every clone's record says how it ended: a crash before leaves clones that
        // never started, which the next look at them removes (see mend).
        List<OperationMarker> making = new ArrayList<>();
        try (HostFiles.Lock ignored = store.lock()) {
            List<String> taken = store.list().stream().map(Sandbox::name).toList();
            for (String name : names) {
                Names.validate(name);
                if (taken.contains(name) || names.indexOf(name) != names.lastIndexOf(name)) {
                    throw SandboxException.conflict("a sandbox named '" + name
                            + "' already exists; choose other names or remove it: airlock rm " + name);
                }
            }
            for (String name : names) {
                Sandbox c = src.copyAs(Names.newId(), name);
                SandboxPaths p = paths(c);
                AirlockDirs.ensureOwnerOnlyDir(p.dir());
                making.add(OperationMarker.begin(p.dir(), OperationMarker.Operation.CLONE));
                store.save(c);
                clones.add(new Backend.Clone(c, p));
            }
        } catch (RuntimeException e) {
            making.forEach(OperationMarker::close);
            throw e;
        }
        try {
            return fork(src, backend, clones);
        } finally {
            making.forEach(OperationMarker::close);
        }
    }

    private List<Sandbox> fork(Sandbox src, Backend backend, List<Backend.Clone> clones) {
        Failpoint.reached("fork-clones-recorded");
        List<CloneResult> results;
        try (OperationMarker ignored = OperationMarker.begin(paths(src).dir(), OperationMarker.Operation.FORK)) {
            results = backend.fork(src, paths(src), clones);
        } catch (RuntimeException e) {
            for (Backend.Clone c : clones) {
                store.save(c.sandbox().moveTo(SandboxState.FAILED, 0, "fork failed: " + e.getMessage()));
            }
            throw e instanceof SandboxException se
                    ? se
                    : new SandboxException("cannot fork sandbox '" + src.name() + "': " + e.getMessage(), e);
        }
        List<Sandbox> out = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        for (int i = 0; i < clones.size(); i++) {
            Backend.Clone c = clones.get(i);
            CloneResult r = results.get(i);
            Launch launch = r.launch();
            if (launch != null) {
                recordOrigin(c.paths(), launch.origin());
                Sandbox running = c.sandbox().moveTo(SandboxState.RUNNING, launch.pid(), null);
                store.save(running);
                out.add(running);
            } else {
                store.save(c.sandbox().moveTo(SandboxState.FAILED, 0, "fork failed: " + r.error()));
                failed.add(c.sandbox().name() + " (" + r.error() + ")");
            }
        }
        if (!failed.isEmpty()) {
            throw SandboxException.failed("fork of '" + src.name() + "': " + failed.size() + " of " + clones.size()
                    + " clones did not start: " + String.join(", ", failed));
        }
        return out;
    }

    /**
     * Removes an image's name (its bytes go when nothing else names them), refused while a
     * sandbox uses it; every backend lets go of what it holds of the image.
     */
    public Image removeImage(String nameOrId) {
        Image removed = images.remove(
                nameOrId, id -> store.list().stream().anyMatch(s -> s.imageId().equals(id)));
        for (Backend b : backends.all()) {
            b.releaseImage(removed.file());
        }
        return removed;
    }

    /** What processes that died left behind outside sandboxes, swept by every backend (daemon start). */
    public void sweepLeftovers() {
        for (Backend b : backends.all()) {
            try {
                b.sweepLeftovers();
            } catch (RuntimeException e) {
                progress.step("cannot sweep what the " + b.name() + " runtime left behind: " + e.getMessage());
            }
        }
    }

    private Backend requireCapability(Sandbox s, Capability c) {
        Backend backend = backends.of(s);
        if (!backend.capabilities().contains(c)) {
            throw Backend.unsupported(s, c);
        }
        return backend;
    }

    /** A sandbox with its state checked against reality: a RUNNING one whose process died is FAILED. */
    public Sandbox inspect(String ref) {
        Sandbox s = store.require(Names.validateRef(ref));
        return refresh(mend(s).orElseThrow(() -> SandboxException.notFound("no such sandbox '" + ref
                + "' (the fork that was making it was cut short); list sandboxes with: airlock ps -a")));
    }

    public List<Sandbox> list() {
        return store.list().stream()
                .map(this::mend)
                .flatMap(Optional::stream)
                .map(this::refresh)
                .toList();
    }

    /**
     * Finishes or undoes what a process that died in the middle of an operation on {@code s} left
     * (its {@link OperationMarker}), so no crash leaves a sandbox wedged:
     *
     * <ul>
     *   <li>a pause, resume or fork whose record still says running: the VM, possibly stopped for
     *       saving and never continued, is continued ({@link Backend#thaw}); a partial saved state
     *       goes;
     *   <li>a pause or resume whose record says paused: a VMM still there (stopped after saving, or
     *       half restored) is ended; the saved state is complete and stays;
     *   <li>a clone whose record was never told how its start went: it never held anything of the
     *       user's, so it is removed, its VMM too if one got that far.
     * </ul>
     *
     * Returns the sandbox as it is now; empty when it was such a clone.
     */
    private Optional<Sandbox> mend(Sandbox s) {
        Path dir = store.dir(s.id());
        if (!OperationMarker.present(dir)) {
            return Optional.of(s);
        }
        Optional<OperationMarker.Left> found = OperationMarker.leftByTheDead(dir);
        if (found.isEmpty()) {
            return Optional.of(s);
        }
        OperationMarker.Left left = found.get();
        Backend backend = backends.of(s);
        SandboxPaths paths = paths(s);
        Sandbox now = store.find(s.id()).orElse(s);
        try {
            switch (left.op()) {
                case CLONE -> {
                    if (now.state() == SandboxState.CREATED) {
                        progress.step("sandbox " + now.name() + ": a fork that made it was cut short; removing it");
                        backend.kill(now, paths);
                        backend.releaseForRemoval(now, paths);
                        store.delete(now.id());
                        HostFiles.deleteTree(paths.runtimeDir());
                        left.lock().close();
                        return Optional.empty();
                    }
                }
                case PAUSE, RESUME, FORK -> {
                    if (now.state() == SandboxState.RUNNING) {
                        progress.step("sandbox " + now.name() + ": a "
                                + left.op().name().toLowerCase(Locale.ROOT) + " was cut short; continuing its VM");
                        backend.thaw(now, paths);
                        if (left.op() != OperationMarker.Operation.FORK) {
                            backend.discardPaused(paths);
                        }
                    } else if (now.state() == SandboxState.PAUSED) {
                        progress.step("sandbox " + now.name() + ": a "
                                + left.op().name().toLowerCase(Locale.ROOT)
                                + " was cut short; it stays paused, its leftover VMM is ended");
                        backend.kill(now, paths);
                    }
                }
            }
        } catch (RuntimeException e) {
            // Tried again at the next look; the marker stays.
            left.lock().close();
            progress.step("sandbox " + now.name() + ": cannot mend an operation cut short: " + e.getMessage());
            return Optional.of(now);
        }
        left.close();
        return Optional.of(now);
    }

    private Sandbox refresh(Sandbox s) {
        if (s.state() != SandboxState.RUNNING || backends.of(s).running(s, paths(s))) {
            return s;
        }
        // Serialised with the start of a stop (see beginEnding): s may have been read before a
        // stop that has finished since, so the record is read again and only a record that still
        // says this process runs is marked failed; a stop that finished saved STOPPED before it
        // left ending, and one that begins after this block saves STOPPED after FAILED.
        synchronized (ending) {
            // Asked after the process was found gone: a stop that began before ended it on purpose.
            if (ending.contains(s.id())) {
                return s;
            }
            Optional<Sandbox> now = store.read(s.id());
            if (now.isEmpty()
                    || now.get().state() != SandboxState.RUNNING
                    || now.get().vmmPid() != s.vmmPid()
                    || !Objects.equals(now.get().started(), s.started())) {
                return now.orElse(s);
            }
            Sandbox failed = s.moveTo(
                    SandboxState.FAILED,
                    0,
                    "its process (pid " + s.vmmPid()
                            + ") exited unexpectedly; the sandbox's disk is kept: start it again with airlock start "
                            + s.name()
                            + ", or delete it with airlock rm " + s.name());
            store.update(failed);
            return failed;
        }
    }

    /** Marks a sandbox as ending on purpose: its process going is not a crash (see refresh). */
    private void beginEnding(String id) {
        synchronized (ending) {
            ending.add(id);
        }
    }

    public SandboxStats stats(String ref) {
        Sandbox s = inspect(ref);
        ResourceUse use = backends.of(s).usage(s, paths(s));
        return new SandboxStats(
                s.name(),
                s.state().label(),
                use.rssBytes(),
                use.pssBytes(),
                use.cpuSeconds(),
                use.diskUsedBytes(),
                s.resources().diskMiB() << 20,
                s.resources().memoryMiB(),
                s.resources().cpus());
    }

    /** The sandbox's console or runtime log (kernel and agent output). */
    public Path log(String ref) {
        Sandbox s = inspect(ref);
        return backends.of(s).log(paths(s));
    }

    /** The writable layer of a sandbox (a workspace's setup is saved from a stopped one's). */
    public Path layer(Sandbox s) {
        return backends.of(s).writableLayer(paths(s));
    }

    /** Where the running sandbox's agent is reached, straight (not through the daemon). */
    public AgentEndpoint agent(Sandbox s) {
        return backends.of(s).agent(s, paths(s));
    }

    /** Opens a new agent session to a running sandbox, straight to its agent. */
    public GuestChannel connect(Sandbox s, Duration timeout) throws IOException {
        Lifecycle.check(Operation.SESSION, s);
        return GuestChannel.connect(agent(s), timeout);
    }

    /** How the sandbox last came up: {@code cold}, {@code template KEY}, {@code resumed}, {@code fork of NAME}, ... */
    public String origin(Sandbox s) {
        try {
            return Files.readString(paths(s).dir().resolve(ORIGIN)).strip();
        } catch (IOException e) {
            return "none";
        }
    }

    private static void recordOrigin(SandboxPaths paths, String origin) {
        // Not fsynced: only told to people (inspect, benchmarks); after a host crash no sandbox runs.
        HostFiles.replace(paths.dir().resolve(ORIGIN), origin.getBytes(StandardCharsets.UTF_8));
    }

    public SandboxPaths paths(Sandbox s) {
        return new SandboxPaths(store.dir(s.id()), runtimeDir(s));
    }

    /** Where the sandbox's sockets live (agent, VMM control). */
    public Path runtimeDir(Sandbox s) {
        return dirs.runtime().resolve(s.id().substring(0, 16));
    }

    private static String logTail(Backend backend, SandboxPaths paths) {
        try {
            List<String> lines = new String(HostFiles.tail(backend.log(paths), 4096), StandardCharsets.ISO_8859_1)
                    .lines()
                    .toList();
            return "\nlast log lines:\n  "
                    + String.join("\n  ", lines.subList(Math.max(0, lines.size() - 10), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }
}
