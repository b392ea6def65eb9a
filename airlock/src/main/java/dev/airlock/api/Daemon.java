package dev.airlock.api;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxEngine;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.jspecify.annotations.Nullable;

/**
 * {@code airlockd}: owns the sandboxes of one data directory. It serves the HTTP/JSON API on a
 * unix socket and, per running sandbox, a shared agent socket that many clients use at once. Its
 * own state is only a cache of what is on disk and in the VMM processes, so it may be killed at
 * any time: the next daemon re-attaches to the VMs that kept running.
 */
public final class Daemon {
    private final AirlockDirs dirs;
    private final SandboxEngine engine;
    private final Map<String, GuestMux> muxes = new ConcurrentHashMap<>();
    private final Map<String, SandboxNetwork> networks = new ConcurrentHashMap<>();
    private final ScheduledExecutorService watchdog = Executors.newSingleThreadScheduledExecutor();
    private @Nullable Server server;

    public Daemon(AirlockDirs dirs) {
        this.dirs = dirs;
        this.engine = new SandboxEngine(dirs, message -> log(message));
        // AIRLOCK_WARM_POOL=N keeps N restored VMs ready per template (AIRLOCK_WARM_POOL_MIB of
        // guest memory in all, default 2048); 0 (the default) ends any a previous daemon left.
        this.engine.enableWarmPool(envInt("AIRLOCK_WARM_POOL", 0), envInt("AIRLOCK_WARM_POOL_MIB", 2048));
        // AIRLOCK_IDLE_PAUSE=SECONDS pauses a microVM sandbox that long without a client; the next
        // exec or shell through the daemon resumes it. 0 (the default) never pauses.
        int idle = envInt("AIRLOCK_IDLE_PAUSE", 0);
        this.idlePause = idle > 0 ? Duration.ofSeconds(idle) : null;
    }

    private final @Nullable Duration idlePause;
    /** Sandboxes this daemon paused for idleness: resumed on their next use, unlike a user's pause. */
    private final java.util.Set<String> autoPaused = ConcurrentHashMap.newKeySet();

    /** Held while deciding to pause an idle sandbox and while handing out a sandbox's agent socket. */
    private final Object idleLock = new Object();

    /**
     * The shared agent socket of a sandbox a client is about to use: resumed first if this daemon
     * paused it for idleness, and counted as in use from now, so the idle check cannot pause it
     * between this answer and the client's connect.
     */
    GuestMux useMux(String ref) {
        synchronized (idleLock) {
            Sandbox s = engine.inspect(ref);
            if (s.state() == SandboxState.PAUSED && autoPaused.remove(s.id())) {
                log("sandbox " + s.name() + " is used again: resuming it");
                s = attach(engine.resume(s.id()));
            }
            if (s.state() != SandboxState.RUNNING) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT,
                        "sandbox '" + s.name() + "' is " + s.state().label()
                                + (s.state() == SandboxState.PAUSED
                                        ? "; resume it with: airlock resume " + s.name()
                                        : "; start it with: airlock start " + s.name()));
            }
            GuestMux m = mux(s);
            m.touch();
            return m;
        }
    }

    private static int envInt(String name, int fallback) {
        String v = System.getenv(name);
        try {
            return v == null || v.isBlank() ? fallback : Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            System.err.println("airlockd: ignoring " + name + "=" + v + " (not a number)");
            return fallback;
        }
    }

    public static Path socket(AirlockDirs dirs) {
        return dirs.runtime().resolve("airlockd.sock");
    }

    private static final String BUILD = currentBuild();

    /**
     * Which build of Airlock this process runs: the jar's modification time when the process
     * started (read once: a running daemon must not take on the identity of a jar rebuilt under
     * it). A client built later replaces a daemon of an older build (VMs and containers keep
     * running meanwhile).
     */
    public static String build() {
        return BUILD;
    }

    private static String currentBuild() {
        try {
            java.nio.file.Path code = java.nio.file.Path.of(Daemon.class
                    .getProtectionDomain()
                    .getCodeSource()
                    .getLocation()
                    .toURI());
            return Files.isRegularFile(code)
                    ? code + "@" + Files.getLastModifiedTime(code).toMillis()
                    : "dev";
        } catch (Exception e) {
            return "unknown";
        }
    }

    static void log(String message) {
        System.err.println(Instant.now() + " airlockd: " + message);
    }

    String dataDir() {
        return dirs.data().toString();
    }

    SandboxEngine engine() {
        return engine;
    }

    /** Runs until killed. Exits at once if another daemon already serves this data directory. */
    public void run() throws Exception {
        AirlockDirs.ensureDir(dirs.runtime());
        FileChannel lockChannel = FileChannel.open(
                dirs.runtime().resolve("airlockd.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock = lockChannel.tryLock();
        if (lock == null) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "another airlockd already serves " + dirs.data() + " (socket " + socket(dirs) + ")");
        }
        Files.writeString(
                dirs.runtime().resolve("airlockd.pid"), ProcessHandle.current().pid() + "\n", StandardCharsets.UTF_8);
        try {
            // Firewall rules and cgroups of nat sandboxes removed while no daemon ran.
            dev.airlock.net.NatFirewall.sweep(
                    dirs, engine.list().stream().map(Sandbox::id).collect(java.util.stream.Collectors.toSet()));
        } catch (RuntimeException e) {
            log("cannot sweep the nat firewall rules left by removed sandboxes: " + e.getMessage());
        }
        for (Sandbox s : engine.list()) {
            if (s.state() == SandboxState.RUNNING) {
                log("re-attaching to running sandbox " + s.name() + " (VMM pid " + s.vmmPid() + ")");
                mux(s);
                try {
                    attachNetwork(s);
                } catch (RuntimeException e) {
                    log("sandbox " + s.name() + ": its network could not be set up again: " + e.getMessage());
                }
            }
        }
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        Server srv = new Server(threads);
        UnixDomainServerConnector connector = new UnixDomainServerConnector(srv);
        Path sock = socket(dirs);
        Files.deleteIfExists(sock);
        connector.setUnixDomainPath(sock);
        srv.addConnector(connector);
        srv.setHandler(new ApiHandler(this));
        srv.start();
        server = srv;
        watchdog.scheduleWithFixedDelay(this::enforceLifetimes, 1, 1, TimeUnit.SECONDS);
        log("serving " + dirs.data() + " on " + sock + " (pid "
                + ProcessHandle.current().pid() + ")");
        srv.join();
        lock.release();
    }

    /** The shared agent socket of a running sandbox, opened on first use. */
    GuestMux mux(Sandbox s) {
        return muxes.computeIfAbsent(s.id(), id -> {
            try {
                return new GuestMux(
                        s.name(), engine.agentSocket(s), engine.runtimeDir(s).resolve("mux.sock"));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot open the shared agent socket of " + s.name(), e);
            }
        });
    }

    /**
     * Serves a sandbox that has just started (booted, restored, resumed, forked): its shared agent
     * socket and its network. A sandbox whose network cannot be set up is killed, not left
     * running without the policy it was created with.
     */
    Sandbox attach(Sandbox s) {
        mux(s);
        try {
            attachNetwork(s);
        } catch (RuntimeException e) {
            dropMux(s);
            engine.kill(s.id());
            throw e;
        }
        return s;
    }

    /** The network side of a running sandbox: the egress proxy (and published ports). */
    SandboxNetwork attachNetwork(Sandbox s) {
        SandboxNetwork existing = networks.get(s.id());
        if (existing != null) {
            return existing;
        }
        SandboxNetwork n = new SandboxNetwork(s, engine.store().dir(s.id()), mux(s).socket(), dirs);
        try {
            n.start();
        } catch (IOException e) {
            n.close();
            throw new UncheckedIOException("cannot set up the network of sandbox " + s.name(), e);
        } catch (InterruptedException e) {
            n.close();
            Thread.currentThread().interrupt();
            throw new SandboxException(SandboxException.Kind.FAILED, "interrupted setting up the network");
        }
        networks.put(s.id(), n);
        return n;
    }

    /** The live network of a sandbox, when it runs. */
    @Nullable
    SandboxNetwork network(Sandbox s) {
        return networks.get(s.id());
    }

    /** After a sandbox was removed: its nat firewall rules and cgroup go too. */
    void forgetNetwork(Sandbox removed) {
        if (removed.nat()) {
            try {
                dev.airlock.net.NatFirewall.remove(dev.airlock.host.NatCgroup.of(dirs, removed.id()), removed.id());
            } catch (RuntimeException e) {
                // The rules only match the removed sandbox's group; the next daemon start sweeps them.
                log("sandbox " + removed.name() + ": cannot remove its nat firewall rules: " + e.getMessage());
            }
        }
    }

    void dropMux(Sandbox s) {
        SandboxNetwork n = networks.remove(s.id());
        if (n != null) {
            n.close();
        }
        GuestMux m = muxes.remove(s.id());
        if (m != null) {
            m.close();
        }
    }

    /** Stops sandboxes whose wall-clock lifetime is over. */
    private void enforceLifetimes() {
        try {
            for (Sandbox s : engine.list()) {
                Duration limit = s.resources().timeout();
                Instant started = s.started();
                if (s.state() == SandboxState.RUNNING
                        && limit != null
                        && started != null
                        && Instant.now().isAfter(started.plus(limit))) {
                    log("sandbox " + s.name() + " reached its " + limit.toSeconds() + " s lifetime: stopping it");
                    dropMux(s);
                    engine.stop(s.id(), Duration.ofSeconds(5));
                } else if (idlePause != null
                        && s.state() == SandboxState.RUNNING
                        && s.runtime().equals("microvm")) {
                    synchronized (idleLock) {
                        GuestMux m = muxes.get(s.id());
                        boolean idle = m != null
                                ? m.idleFor(idlePause)
                                : started != null && Instant.now().isAfter(started.plus(idlePause));
                        if (idle) {
                            log("sandbox " + s.name() + " idle for " + idlePause.toSeconds() + " s: pausing it");
                            dropMux(s);
                            engine.pause(s.id());
                            autoPaused.add(s.id());
                        }
                    }
                }
            }
        } catch (RuntimeException e) {
            log("lifetime check failed: " + e.getMessage());
        }
    }

    public void shutdown() {
        Server srv = server;
        if (srv != null) {
            try {
                srv.stop();
            } catch (Exception e) {
                log("stop failed: " + e.getMessage());
            }
        }
        networks.values().forEach(SandboxNetwork::close);
        muxes.values().forEach(GuestMux::close);
        watchdog.shutdownNow();
        HostFiles.deleteTree(socket(dirs));
    }
}
