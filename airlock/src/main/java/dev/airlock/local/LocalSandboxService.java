package dev.airlock.local;

import dev.airlock.backend.Capability;
import dev.airlock.build.ImageBuilder;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.FileWriteWatch;
import dev.airlock.host.HostFiles;
import dev.airlock.host.LinuxSyscalls;
import dev.airlock.host.NatCgroup;
import dev.airlock.host.RotatingLog;
import dev.airlock.image.Image;
import dev.airlock.image.ImageConfig;
import dev.airlock.image.ImageStore;
import dev.airlock.image.oci.ImagePull;
import dev.airlock.image.oci.ImageReference;
import dev.airlock.image.oci.Platform;
import dev.airlock.image.oci.RegistryClient;
import dev.airlock.image.oci.RegistryCredentials;
import dev.airlock.net.EgressLog;
import dev.airlock.net.InferenceBridge;
import dev.airlock.net.NatFirewall;
import dev.airlock.net.NetworkSpec;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.sandbox.SandboxStats;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.EventFeed;
import dev.airlock.service.ForkSpec;
import dev.airlock.service.FrameSessions;
import dev.airlock.service.ImageBuildSpec;
import dev.airlock.service.ImageInfo;
import dev.airlock.service.ImagePullSpec;
import dev.airlock.service.InferenceUsage;
import dev.airlock.service.LogKind;
import dev.airlock.service.PolicyChange;
import dev.airlock.service.ProgressListener;
import dev.airlock.service.PullResult;
import dev.airlock.service.PullSpec;
import dev.airlock.service.RemovedImage;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import dev.airlock.service.SandboxSession;
import dev.airlock.service.WorkspaceSpec;
import dev.airlock.workspace.ProjectConfig;
import dev.airlock.workspace.WorkspaceMeta;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.jspecify.annotations.Nullable;

/**
 * The sandbox service as the daemon runs it: the engine for the lifecycle, plus everything a
 * running sandbox needs from a long-lived process. Each running sandbox gets a shared agent
 * session ({@link GuestMux}) that every client's session goes through, its network (egress
 * proxy, ports, inference bridge, nat rules) and its defaults in the agent (the create-time
 * environment, working directory and user, and the network's variables), set again whenever it
 * comes up. A watchdog stops sandboxes whose lifetime is over and pauses idle ones when asked to.
 *
 * <p>Its own state is only a cache of what is on disk and in the sandboxes' processes, so the
 * daemon may be killed at any time: the next one re-attaches to the sandboxes that kept running.
 */
public final class LocalSandboxService implements SandboxService, FrameSessions {
    private static final Duration SESSION_HELLO = Duration.ofSeconds(30);

    private final AirlockDirs dirs;
    private final SandboxEngine engine;
    private final @Nullable Duration idlePause;
    private final Map<String, GuestMux> muxes = new ConcurrentHashMap<>();
    private final Map<String, SandboxNetwork> networks = new ConcurrentHashMap<>();
    /** Sandboxes this daemon paused for idleness: resumed on their next use, unlike a user's pause. */
    private final Set<String> autoPaused = ConcurrentHashMap.newKeySet();
    /**
     * Per sandbox: held while attaching it, while deciding to pause it for idleness and while
     * handing out a session, so none of these sees another half done.
     */
    private final Map<String, Object> locks = new ConcurrentHashMap<>();

    private final Workspaces workspaces;
    /** Caps the console logs of running sandboxes as soon as they grow (the watchdog is the backstop). */
    private final @Nullable FileWriteWatch logWatch = openLogWatch();

    private final SandboxEvents events = new SandboxEvents();
    /** Sandboxes an operation is changing right now: their events wait for its end. */
    private final Set<String> busy = ConcurrentHashMap.newKeySet();

    private final ImageStore images;
    private final ScheduledExecutorService watchdog = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("airlockd-watchdog").factory());

    /** {@code idlePause}: pause a sandbox that long without a client (null: never). */
    public LocalSandboxService(AirlockDirs dirs, SandboxEngine engine, @Nullable Duration idlePause) {
        this.dirs = dirs;
        this.engine = engine;
        this.idlePause = idlePause;
        this.workspaces = new Workspaces(dirs, engine, this);
        this.images = new ImageStore(dirs);
    }

    public SandboxEngine engine() {
        return engine;
    }

    // ---- lifecycle -------------------------------------------------------------------------

    @Override
    public SandboxInfo create(CreateSpec spec) {
        try {
            ProjectConfig none = ProjectConfig.none();
            return info(create(CreatePlan.of(spec, none, null, null, imageConfig(CreatePlan.imageOf(spec, none)))));
        } finally {
            changed();
        }
    }

    /**
     * The config of the image a sandbox is to boot, whose defaults the plan applies; an image not
     * in the store yet (a built-in, built at create) has none. The engine resolves the name again
     * and reports an unknown one.
     */
    private ImageConfig imageConfig(String image) {
        try {
            return images.find(image).map(Image::config).orElse(ImageConfig.EMPTY);
        } catch (RuntimeException e) {
            return ImageConfig.EMPTY;
        }
    }

    /** Creates the sandbox and keeps its network settings beside it. */
    Sandbox create(CreatePlan plan) {
        Sandbox created = engine.create(plan.options());
        Path dir = engine.paths(created).dir();
        try {
            SandboxNetwork.save(dir, plan.network());
            SandboxNetwork.saveSecrets(dir, plan.secrets());
            SandboxNetwork.saveInference(dir, plan.inference());
        } catch (RuntimeException e) {
            engine.remove(created.id(), true);
            throw e;
        }
        return created;
    }

    @Override
    public SandboxInfo start(String ref) {
        try {
            return info(attach(engine.start(ref)));
        } finally {
            changed();
        }
    }

    @Override
    public SandboxInfo stop(String ref, Duration grace) {
        Sandbox s = engine.inspect(ref);
        busy.add(s.id());
        try {
            detach(s);
            autoPaused.remove(s.id());
            return info(engine.stop(s.id(), grace));
        } finally {
            busy.remove(s.id());
            changed();
        }
    }

    @Override
    public SandboxInfo kill(String ref) {
        Sandbox s = engine.inspect(ref);
        busy.add(s.id());
        try {
            detach(s);
            return info(engine.kill(s.id()));
        } finally {
            busy.remove(s.id());
            changed();
        }
    }

    @Override
    public SandboxInfo pause(String ref) {
        Sandbox s = engine.inspect(ref);
        busy.add(s.id());
        try {
            synchronized (lockOf(s)) {
                detach(s);
                Sandbox paused = engine.pause(s.id());
                autoPaused.remove(s.id());
                return info(paused);
            }
        } finally {
            busy.remove(s.id());
            changed();
        }
    }

    @Override
    public SandboxInfo resume(String ref) {
        Sandbox s = engine.inspect(ref);
        autoPaused.remove(s.id());
        try {
            return info(attach(engine.resume(s.id())));
        } finally {
            changed();
        }
    }

    @Override
    public List<SandboxInfo> fork(String ref, ForkSpec spec) {
        Sandbox src = engine.inspect(ref);
        List<String> names = spec.names() != null ? spec.names() : List.of();
        int count = spec.count() != null ? spec.count() : names.isEmpty() ? 1 : names.size();
        if (!names.isEmpty() && names.size() != count) {
            throw new SandboxException("fork: " + count + " clones asked for but " + names.size() + " names given");
        }
        if (names.isEmpty()) {
            if (count < 1 || count > 64) {
                throw new SandboxException("fork: the number of clones must be 1 to 64, not " + count);
            }
            names = IntStream.rangeClosed(1, count)
                    .mapToObj(i -> src.name() + "-" + i)
                    .toList();
        }
        List<SandboxInfo> out = new ArrayList<>();
        try {
            for (Sandbox clone : engine.fork(src.id(), names)) {
                // A clone has its source's egress policy, secrets and bridge; not its published
                // ports, whose host ports the source holds.
                SandboxNetwork.copyForClone(
                        engine.paths(src).dir(), engine.paths(clone).dir());
                out.add(info(attach(clone)));
            }
        } finally {
            changed();
        }
        return out;
    }

    @Override
    public SandboxInfo remove(String ref, boolean force) {
        Sandbox s = engine.inspect(ref);
        if (force || s.state() != SandboxState.RUNNING) {
            detach(s);
        }
        SandboxInfo last = info(s);
        Sandbox removed;
        busy.add(s.id());
        try {
            removed = engine.remove(s.id(), force);
        } finally {
            busy.remove(s.id());
            changed();
        }
        autoPaused.remove(removed.id());
        locks.remove(removed.id());
        forgetNetwork(removed);
        return last;
    }

    @Override
    public SandboxInfo inspect(String ref) {
        return info(engine.inspect(ref));
    }

    @Override
    public List<SandboxInfo> list() {
        return engine.list().stream().map(this::info).toList();
    }

    @Override
    public SandboxStats stats(String ref) {
        return engine.stats(ref);
    }

    @Override
    public String logs(String ref, LogKind kind, int maxBytes) {
        Sandbox s = engine.inspect(ref);
        Path file = kind == LogKind.CONSOLE
                ? engine.log(s.id())
                : engine.paths(s).dir().resolve(EgressLog.FILE);
        try {
            return new String(
                    kind == LogKind.CONSOLE ? RotatingLog.tail(file, maxBytes) : HostFiles.tail(file, maxBytes),
                    kind == LogKind.CONSOLE ? StandardCharsets.ISO_8859_1 : StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new SandboxException("cannot read the log of sandbox '" + s.name() + "': " + e.getMessage(), e);
        }
    }

    // ---- events -----------------------------------------------------------------------------

    @Override
    public EventFeed events(@Nullable String ref) {
        String id = ref == null ? null : engine.inspect(ref).id();
        return events.subscribe(id, engine::list);
    }

    /** Tells event subscribers what changed since the last look (nothing to do when none listens). */
    private void changed() {
        if (events.listened()) {
            try {
                events.observe(engine::list, busy);
            } catch (RuntimeException e) {
                DaemonLog.log("cannot list the sandboxes for their events: " + e.getMessage());
            }
        }
    }

    // ---- sessions --------------------------------------------------------------------------

    @Override
    public SandboxSession session(String ref) throws IOException {
        InUse u = useMux(ref);
        return new SandboxSession(
                info(u.sandbox()), GuestChannel.connect(u.mux().socket(), SESSION_HELLO));
    }

    @Override
    public FrameSessions.Opened open(String ref) {
        InUse u = useMux(ref);
        GuestMux m = u.mux();
        SandboxInfo info = info(u.sandbox());
        return new FrameSessions.Opened() {
            @Override
            public SandboxInfo sandbox() {
                return info;
            }

            @Override
            public void serve(InputStream in, OutputStream out) {
                m.serve(in, out);
            }
        };
    }

    /** A sandbox's shared agent session, and the sandbox as found when it was taken into use. */
    private record InUse(GuestMux mux, Sandbox sandbox) {}

    /**
     * The shared agent session of a sandbox a client is about to use: resumed first if this
     * daemon paused it for idleness, and counted as in use from now, so the idle check cannot
     * pause it between this answer and the client's first frame. The sandbox comes with it, so
     * a session does not look it up a third time (each look-up asks the backend whether it
     * runs: a {@code crun state} process for a container).
     */
    private InUse useMux(String ref) {
        Sandbox found = engine.inspect(ref);
        synchronized (lockOf(found)) {
            Sandbox s = engine.inspect(found.id());
            if (s.state() == SandboxState.PAUSED && autoPaused.remove(s.id())) {
                DaemonLog.log("sandbox " + s.name() + " is used again: resuming it");
                s = attach(engine.resume(s.id()));
            }
            dev.airlock.engine.Lifecycle.check(dev.airlock.engine.Lifecycle.Operation.SESSION, s);
            attach(s);
            GuestMux m = mux(s);
            m.touch();
            return new InUse(m, s);
        }
    }

    /** The shared agent session of a running sandbox, opened on first use. */
    private GuestMux mux(Sandbox s) {
        return muxes.computeIfAbsent(s.id(), id -> {
            try {
                Path dir = AirlockDirs.ensurePrivateDir(dirs.runtime().resolve("mux"));
                return new GuestMux(s.name(), engine.agent(s), dir.resolve(id.substring(0, 16) + ".sock"));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot open the shared agent socket of " + s.name(), e);
            }
        });
    }

    /**
     * Serves a sandbox that has just come up (booted, restored, resumed, forked, or found running
     * by a new daemon): its shared agent session, its network and its defaults in the agent. A
     * sandbox whose network cannot be set up is killed, not left running without the policy it
     * was created with. Repeating it is harmless.
     */
    Sandbox attach(Sandbox s) {
        synchronized (lockOf(s)) {
            if (networks.containsKey(s.id())) {
                return s;
            }
            GuestMux m = mux(s);
            Path dir = engine.paths(s).dir();
            SandboxNetwork n = new SandboxNetwork(s, dir, m.socket(), dirs);
            try {
                n.start();
                Map<String, String> defaults = new LinkedHashMap<>(n.guestEnv());
                // The sandbox's own variables win over the network's, as a command's own win over both.
                defaults.putAll(s.env());
                try (GuestChannel ch = GuestChannel.connect(m.socket(), SESSION_HELLO)) {
                    ch.setDefaults(defaults, s.workdir(), s.user(), SESSION_HELLO);
                }
                networks.put(s.id(), n);
                watchLog(s);
                return s;
            } catch (IOException | RuntimeException e) {
                n.close();
                dropMux(s);
                engine.kill(s.id());
                throw e instanceof SandboxException se
                        ? se
                        : new SandboxException(
                                "cannot set up sandbox " + s.name() + " (its network or defaults): " + e.getMessage(),
                                e);
            } catch (InterruptedException e) {
                n.close();
                dropMux(s);
                Thread.currentThread().interrupt();
                throw new SandboxException("interrupted setting up sandbox " + s.name(), e);
            }
        }
    }

    private Object lockOf(Sandbox s) {
        return locks.computeIfAbsent(s.id(), id -> new Object());
    }

    /** Before a sandbox goes down: its network and shared session go first. */
    private void detach(Sandbox s) {
        if (logWatch != null) {
            logWatch.unwatch(consoleLog(s));
        }
        SandboxNetwork n = networks.remove(s.id());
        if (n != null) {
            n.close();
        }
        dropMux(s);
    }

    private void dropMux(Sandbox s) {
        GuestMux m = muxes.remove(s.id());
        if (m != null) {
            m.close();
        }
    }

    /** After a sandbox was removed: its nat firewall rules and cgroup go too. */
    private void forgetNetwork(Sandbox removed) {
        if (removed.nat()) {
            try {
                NatFirewall.remove(NatCgroup.of(dirs, removed.id()), removed.id());
            } catch (RuntimeException e) {
                // The rules only match the removed sandbox's group; the next daemon start sweeps them.
                DaemonLog.log(
                        "sandbox " + removed.name() + ": cannot remove its nat firewall rules: " + e.getMessage());
            }
        }
    }

    // ---- network ---------------------------------------------------------------------------

    @Override
    public NetworkSpec network(String ref) {
        return SandboxNetwork.load(engine.paths(engine.inspect(ref)).dir());
    }

    @Override
    public NetworkSpec changePolicy(String ref, PolicyChange change) {
        Sandbox s = engine.inspect(ref);
        Path dir = engine.paths(s).dir();
        try (HostFiles.Lock ignored = HostFiles.lock(dir.resolve(".network.lock"))) {
            NetworkSpec now = SandboxNetwork.load(dir);
            List<String> allow = new ArrayList<>(now.allowHosts());
            List<String> pins = new ArrayList<>(now.addHosts());
            for (String h : orEmpty(change.allow())) {
                String host = h.toLowerCase(Locale.ROOT);
                if (!allow.contains(host)) {
                    allow.add(host);
                }
            }
            for (String h : orEmpty(change.deny())) {
                if (!allow.remove(h.toLowerCase(Locale.ROOT))) {
                    throw new SandboxException(h + " is not on the allowlist of " + s.name() + " (it has: "
                            + (allow.isEmpty() ? "nothing" : String.join(", ", allow)) + ")");
                }
            }
            pins.addAll(orEmpty(change.pin()));
            for (String name : orEmpty(change.unpin())) {
                String prefix = name.toLowerCase(Locale.ROOT) + ":";
                pins.removeIf(e -> e.toLowerCase(Locale.ROOT).startsWith(prefix));
            }
            return SandboxNetwork.updatePolicy(dir, networks.get(s.id()), allow, pins);
        }
    }

    @Override
    public NetworkSpec publish(String ref, String mapping) {
        Sandbox s = engine.inspect(ref);
        try {
            return SandboxNetwork.addPort(engine.paths(s).dir(), networks.get(s.id()), mapping);
        } catch (IOException e) {
            throw new SandboxException("cannot publish " + mapping + ": " + e.getMessage(), e);
        }
    }

    @Override
    public NetworkSpec unpublish(String ref, int hostPort) {
        Sandbox s = engine.inspect(ref);
        return SandboxNetwork.removePort(engine.paths(s).dir(), networks.get(s.id()), hostPort);
    }

    @Override
    public InferenceUsage inferenceUsage(String ref) {
        Sandbox s = engine.inspect(ref);
        SandboxNetwork n = networks.get(s.id());
        InferenceBridge.Usage u = n == null ? null : n.inferenceUsage();
        Path dir = engine.paths(s).dir();
        if (u == null && Files.exists(dir.resolve(SandboxNetwork.INFERENCE))) {
            // Not running (or its network not up): the counts it kept.
            u = InferenceBridge.loadUsage(dir.resolve(SandboxNetwork.USAGE_FILE));
        }
        if (u == null) {
            throw SandboxException.notFound(
                    "sandbox '" + s.name() + "' has no inference bridge (create it with --inference URL)");
        }
        return new InferenceUsage(u.requests(), u.throttled(), u.bytesIn(), u.bytesOut());
    }

    @Override
    public RemovedImage removeImage(String name) {
        dev.airlock.image.Image removed = engine.removeImage(name);
        return new RemovedImage(removed.name(), removed.id());
    }

    @Override
    public ImageInfo buildImage(ImageBuildSpec spec, ProgressListener progress) {
        // RUN steps go through this service like any client's sandboxes: the build is one more front end
        Image image = new ImageBuilder(this, images, progress::step, new ProgressOutput(progress)).build(spec);
        return new ImageInfo(image.name(), image.id(), image.sizeBytes());
    }

    @Override
    public ImageInfo pullImage(ImagePullSpec spec, ProgressListener progress) {
        ImageReference ref = ImageReference.parse(spec.reference());
        try (RegistryClient client = new RegistryClient(
                RegistryCredentials.fromEnvironment(), spec.insecure(), RegistryClient.insecureFromEnvironment())) {
            Image image = new ImagePull(images, client, progress::step)
                    .pull(ref, Platform.parse(spec.platform() == null ? "linux/amd64" : spec.platform()), spec.name());
            return new ImageInfo(image.name(), image.id(), image.sizeBytes());
        }
    }

    // ---- workspaces ------------------------------------------------------------------------

    @Override
    public SandboxInfo createWorkspace(WorkspaceSpec spec, ProgressListener progress) {
        try {
            return info(workspaces.create(spec, progress));
        } finally {
            changed();
        }
    }

    @Override
    public void diff(String ref, OutputStream out) throws IOException {
        workspaces.diff(ref, out);
    }

    @Override
    public PullResult pull(String ref, PullSpec spec) throws IOException {
        return workspaces.pull(ref, spec);
    }

    // ---- the daemon's own work -------------------------------------------------------------

    /**
     * Re-attaches the sandboxes a previous daemon left running, each on its own thread, so a
     * sandbox whose guest does not answer delays only itself, never the API. A client that
     * reaches one first attaches it itself.
     */
    public void reattachRunning() {
        for (Sandbox s : engine.list()) {
            capLog(consoleLog(s));
            if (s.state() == SandboxState.RUNNING) {
                Thread.ofVirtual().name("reattach-" + s.name()).start(() -> {
                    DaemonLog.log("re-attaching to running sandbox " + s.name() + " (pid " + s.vmmPid() + ")");
                    try {
                        attach(s);
                    } catch (RuntimeException e) {
                        DaemonLog.log("sandbox " + s.name() + " could not be re-attached: " + e.getMessage());
                    }
                });
            }
        }
    }

    /** Sweeps the nat firewall rules of sandboxes removed while no daemon ran. */
    public void sweepRemovedNetworks() {
        try {
            NatFirewall.sweep(dirs, engine.list().stream().map(Sandbox::id).collect(Collectors.toSet()));
        } catch (RuntimeException e) {
            DaemonLog.log("cannot sweep the nat firewall rules left by removed sandboxes: " + e.getMessage());
        }
    }

    /** Starts the once-a-second check of lifetimes and idleness. */
    public void startWatchdog() {
        watchdog.scheduleWithFixedDelay(this::enforceLifetimes, 1, 1, TimeUnit.SECONDS);
    }

    /** Stops sandboxes whose wall-clock lifetime is over; pauses idle ones when idle pause is on. */
    private void enforceLifetimes() {
        try {
            for (Sandbox s : engine.list()) {
                Duration limit = s.resources().timeout();
                Instant started = s.started();
                if (s.state() != SandboxState.RUNNING) {
                    continue;
                }
                capLog(consoleLog(s));
                if (limit != null && started != null && Instant.now().isAfter(started.plus(limit))) {
                    DaemonLog.log(
                            "sandbox " + s.name() + " reached its " + limit.toSeconds() + " s lifetime: stopping it");
                    detach(s);
                    engine.stop(s.id(), Duration.ofSeconds(5));
                } else if (idlePause != null && engine.backend(s).capabilities().contains(Capability.PAUSE)) {
                    pauseIfIdle(s, idlePause, started);
                }
            }
        } catch (RuntimeException e) {
            DaemonLog.log("lifetime check failed: " + e.getMessage());
        }
        // A VMM that died, a lifetime that ran out, an idle pause: events for all of them.
        changed();
    }

    private void pauseIfIdle(Sandbox s, Duration idle, @Nullable Instant started) {
        synchronized (lockOf(s)) {
            GuestMux m = muxes.get(s.id());
            boolean isIdle = m != null
                    ? m.idleFor(idle)
                    : started != null && Instant.now().isAfter(started.plus(idle));
            if (isIdle) {
                DaemonLog.log("sandbox " + s.name() + " idle for " + idle.toSeconds() + " s: pausing it");
                detach(s);
                engine.pause(s.id());
                autoPaused.add(s.id());
            }
        }
    }

    /** Ends the daemon's part of every sandbox (they keep running) and the backends' pools. */
    public void close() {
        watchdog.shutdownNow();
        if (logWatch != null) {
            logWatch.close();
        }
        networks.values().forEach(SandboxNetwork::close);
        muxes.values().forEach(GuestMux::close);
        engine.backends().close();
    }

    // ---- console logs ----------------------------------------------------------------------

    /**
     * A guest writes its console as fast as it likes (a container straight to the host's disk),
     * so its log is capped ({@link RotatingLog}) whenever it is written to, and once a second
     * by the watchdog in case an event was missed. While no daemon runs nothing caps it.
     */
    private static @Nullable FileWriteWatch openLogWatch() {
        try {
            return new FileWriteWatch("airlockd-log-cap", LocalSandboxService::capLog);
        } catch (LinuxSyscalls.ErrnoException e) {
            DaemonLog.log("cannot watch console logs (" + e.getMessage() + "); capping them once a second instead");
            return null;
        }
    }

    private void watchLog(Sandbox s) {
        Path log = consoleLog(s);
        if (logWatch != null && Files.isRegularFile(log)) {
            try {
                logWatch.watch(log);
            } catch (LinuxSyscalls.ErrnoException e) {
                DaemonLog.log("sandbox " + s.name() + ": cannot watch its console log (" + e.getMessage()
                        + "); it is capped once a second instead");
            }
        }
    }

    private Path consoleLog(Sandbox s) {
        return engine.backend(s).log(engine.paths(s));
    }

    private static void capLog(Path log) {
        try {
            // No log line per trim: a flooding guest would then fill the daemon's log instead.
            RotatingLog.trim(log, RotatingLog.CAP);
        } catch (IOException | RuntimeException e) {
            DaemonLog.log("cannot cap " + log + ": " + e.getMessage());
        }
    }

    // ---- views -----------------------------------------------------------------------------

    SandboxInfo info(Sandbox s) {
        Path dir = engine.paths(s).dir();
        String network;
        try {
            network = SandboxNetwork.load(dir).mode();
        } catch (RuntimeException e) {
            network = "unknown";
        }
        String workspace = null;
        if (Files.isRegularFile(dir.resolve(WorkspaceMeta.FILE))) {
            try {
                workspace = WorkspaceMeta.read(dir, s.name()).repo();
            } catch (RuntimeException e) {
                workspace = "unreadable";
            }
        }
        return new SandboxInfo(
                s.id(),
                s.name(),
                s.runtime(),
                engine.backend(s).isolation(s),
                s.image(),
                s.imageId(),
                s.accel(),
                s.resources(),
                s.env(),
                s.workdir(),
                s.state(),
                s.vmmPid(),
                s.created(),
                s.started(),
                s.error(),
                network,
                engine.origin(s),
                workspace,
                s.user(),
                s.command());
    }

    private static <T> List<T> orEmpty(@Nullable List<T> list) {
        return list == null ? List.of() : list;
    }
}
