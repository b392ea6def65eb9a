package dev.airlock.gvisor;

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
import dev.airlock.host.Failpoint;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.NatCgroup;
import dev.airlock.host.Progress;
import dev.airlock.image.GuestAgent;
import dev.airlock.oci.Container;
import dev.airlock.oci.ContainerException;
import dev.airlock.oci.ContainerSpec;
import dev.airlock.oci.ImageMounts;
import dev.airlock.oci.OciContainers;
import dev.airlock.oci.OciRuntime;
import dev.airlock.oci.OciSandboxes;
import dev.airlock.oci.Slirp4netns;
import dev.airlock.sandbox.Names;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.jspecify.annotations.Nullable;

/**
 * Sandboxes under gVisor ({@code runsc}): the same OCI bundle as a container sandbox (the image
 * mounted once, the sandbox's upper directory joined to it by overlayfs on the host, the agent as
 * PID 1 on a unix socket), run by a user-space kernel, the Sentry, instead of the host's. See
 * docs/gvisor.md.
 *
 * <p>How the host reaches the agent: runsc's {@code --host-uds=create} lets the sandbox create
 * unix sockets on the host through its file mounts (never connect to host sockets, which
 * {@code open} would allow), so the agent's {@code listen} on /run/airlock/agent.sock makes a
 * real socket in the sandbox's runtime directory that the host connects to as for a container.
 *
 * <p>What the runtime does not enforce per command, the agent does (told in its environment):
 * the host cgroup bounds the Sentry as a whole, so a command's memory or process limit hit there
 * would end the sandbox. The agent keeps commands in a pids cgroup of gVisor's own and kills the
 * biggest process when the sandbox uses more than its memory; the host cgroup, set above those
 * by the Sentry's own needs, stays the hard boundary.
 *
 * <p>Pause and fork are {@code runsc checkpoint}/{@code restore}; a checkpoint cannot save a
 * socket bound on the host, so the agent closes its listener first (SIGUSR1) and opens it again
 * after (SIGUSR2).
 */
public final class GvisorBackend implements Backend {
    public static final String NAME = "gvisor";

    /**
     * The agent may set a claimed or cloned sandbox's hostname (CAP_SYS_ADMIN in the Sentry, not
     * the host) and drops both from every command's bounding set (CAP_SETPCAP lets it).
     */
    private static final List<String> AGENT_CAPS = List.of("CAP_SYS_ADMIN", "CAP_SETPCAP");

    private static final String AGENT_CAP_NUMBERS = "21,8";
    /** A paused sandbox's checkpoint image, in its directory. */
    private static final String PAUSED = "paused";
    /** A warm-pool sandbox's marker, in its directory (the microVM pool has its own). */
    private static final String POOL_MARKER = "pooled-gvisor";
    /**
     * How long after a claim the pool starts its replacement: a Sentry's start takes ~0.5 s of
     * CPU, which on a 2-core host slowed the claimed sandbox's first command several times over.
     */
    private static final Duration REFILL_AFTER = Duration.ofMillis(500);
    /** How long the agent may take to close or reopen its listener. */
    private static final Duration LISTENER_LIMIT = Duration.ofSeconds(20);

    private final AirlockDirs dirs;
    private final Duration startLimit;
    private final Progress progress;
    private final OciSandboxes oci;
    private volatile PlatformProbe.@Nullable Decision platform;
    private volatile @Nullable String version;
    /** runsc with the host network mode, for {@code --network nat} sandboxes; made with the other. */
    private volatile @Nullable OciContainers natContainers;

    private volatile @Nullable WarmPool pool;
    /** The image file each pool key's sandboxes run on, so an image's removal can end them. */
    private final Map<String, String> imageOfKey = new ConcurrentHashMap<>();
    /**
     * The agent session each ready pooled sandbox was filled through, by its id, kept open: the
     * claim gives the name on it instead of connecting anew, and a session that has closed says
     * that its Sentry is gone. While it is open the agent (one host session at a time) serves no
     * other, which a sandbox nobody has claimed needs not.
     */
    private final Map<String, GuestChannel> pooledSessions = new ConcurrentHashMap<>();

    public GvisorBackend(AirlockDirs dirs, Duration startLimit, Progress progress) {
        this.dirs = dirs;
        this.startLimit = startLimit;
        this.progress = progress;
        this.oci = new OciSandboxes(NAME, this::findRuntime);
    }

    /** runsc (AIRLOCK_RUNSC, else on PATH), on the platform that works here. */
    private OciContainers findRuntime() {
        Path runsc = binary();
        PlatformProbe.Decision d = new PlatformProbe(dirs.cache(), runsc)
                .decide(blankToNull(System.getenv("AIRLOCK_GVISOR_PLATFORM")), progress);
        platform = d;
        ImageMounts images = new ImageMounts(dirs.cache().resolve("mounts"));
        natContainers = new OciContainers(
                new OciRuntime(runsc, dirs.runtime().resolve("runsc"), flags(d.platform(), "host")), images);
        return new OciContainers(
                new OciRuntime(runsc, dirs.runtime().resolve("runsc"), flags(d.platform(), "none")), images);
    }

    private static Path binary() {
        String chosen = System.getenv("AIRLOCK_RUNSC");
        if (chosen != null && !chosen.isBlank()) {
            Path p = Path.of(chosen.strip());
            if (!Files.isExecutable(p)) {
                throw new ContainerException("AIRLOCK_RUNSC=" + chosen + " is not an executable file");
            }
            return p;
        }
        return OciRuntime.onPath("runsc")
                .orElseThrow(() -> new ContainerException("runsc (gVisor) is not installed; airlock setup installs it"
                        + " (Debian 12: runsc from bookworm-backports)"));
    }

    /**
     * The flags every runsc command of ours gets: the platform; the network ({@code none}: the
     * Sentry's own stack with only loopback, the agent carries {@code --network proxy}; {@code
     * host} for {@code --network nat}, see {@link #start}); unix sockets the sandbox creates on
     * its mounts become host sockets (the agent's); the root filesystem written straight to the
     * host overlay (not gVisor's own overlay in memory, which would lose the sandbox's files at
     * stop); as many CPUs as the quota gives.
     */
    public static List<String> flags(String platform, String network) {
        return List.of(
                "--platform=" + platform,
                "--network=" + network,
                "--host-uds=create",
                "--overlay2=none",
                "--cpu-num-from-quota");
    }

    /**
     * What the host cgroup allows the whole sandbox: the guest's memory plus the Sentry's own
     * (its Go heap, page tables, the gofer) and room for a hog to grow between two checks of
     * the agent's memory guard.
     */
    static int hostMemoryMiB(int memoryMiB) {
        return memoryMiB + Math.max(64, memoryMiB / 4);
    }

    /** Host tasks: the Sentry's and gofer's threads and, on systrap, about 3 stub threads per guest process. */
    static int hostPids(int pids) {
        return (int) Math.min(4_194_304L, 64L + 4L * pids);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String isolation(Sandbox s) {
        PlatformProbe.Decision d = platform;
        return "user-space kernel (gVisor Sentry" + (d != null ? ", " + d.platform() + " platform" : "")
                + "; the host kernel sees only the Sentry's seccomp-filtered system calls)";
    }

    @Override
    public Set<Capability> capabilities() {
        return EnumSet.of(Capability.PAUSE, Capability.FORK, Capability.NAT, Capability.WARM_POOL);
    }

    @Override
    public Optional<String> unavailableReason() {
        return oci.unavailableReason();
    }

    @Override
    public HostFit hostFit() {
        Optional<String> why = oci.unavailableReason();
        PlatformProbe.Decision d = platform;
        if (why.isPresent() || d == null) {
            return new HostFit(
                    Boundary.USER_SPACE_KERNEL, why.orElse("runsc was not checked"), -1, "runsc do true", "gVisor");
        }
        return new HostFit(
                Boundary.USER_SPACE_KERNEL,
                null,
                d.startMillis(),
                "runsc do true, " + d.platform(),
                version() + ", platform " + d.platform() + " (" + d.reason() + ")");
    }

    private String version() {
        String v = version;
        if (v == null) {
            HostCommand.Result r = HostCommand.run(List.of(binary().toString(), "--version"), null, null);
            v = r.ok() ? r.output().lines().findFirst().orElse("runsc").strip() : "runsc";
            version = v;
        }
        return v;
    }

    @Override
    public void prepareHost() {
        oci.require();
    }

    /**
     * An image's name is going: its pooled sandboxes go first (nothing would claim them, and
     * they hold the image's mount until the daemon stops), then the image's shared mount. A
     * second name's removal ends them too; the next create of the image fills the pool again.
     */
    @Override
    public void releaseImage(Path imageFile) {
        WarmPool p = pool;
        if (p != null) {
            String file = imageFile.toString();
            for (String id : p.drain(key -> file.equals(imageOfKey.get(key)), startLimit)) {
                endPooled(dirs.sandboxes().resolve(id));
            }
        }
        oci.releaseImage(imageFile);
    }

    @Override
    public void prepare(Sandbox s, SandboxPaths paths, @Nullable Path layerTemplate) {
        oci.prepare(paths, layerTemplate, s.resources().diskMiB(), null);
    }

    /** The sandbox's container: the host cgroup bounds the Sentry; the agent bounds commands. */
    private ContainerSpec spec(Sandbox s, SandboxPaths paths, ContainerSpec.Network network) {
        int memory = s.resources().memoryMiB();
        int pids = s.resources().pids();
        return OciSandboxes.spec(s, paths, GuestAgent.bundled(dirs).binary())
                .memoryMiB(hostMemoryMiB(memory))
                .pids(hostPids(pids))
                .env("AIRLOCK_PIDS", Integer.toString(pids))
                .env("AIRLOCK_MEMORY_GUARD", Long.toString((long) memory << 20))
                .env("AIRLOCK_AGENT_CAPS", AGENT_CAP_NUMBERS)
                .agentCapabilities(AGENT_CAPS)
                .network(network)
                .build();
    }

    /** The gVisor platform sandboxes run on here (probed on first use): kvm, systrap or ptrace. */
    public String platformInUse() {
        oci.require();
        return Objects.requireNonNull(platform).platform();
    }

    private String origin() {
        PlatformProbe.Decision d = platform;
        return "gvisor" + (d != null ? " " + d.platform() : "");
    }

    /**
     * Starts the sandbox. {@code --network nat}: runsc takes its interfaces when it starts, so the
     * network namespace is made first with slirp4netns on it. runsc 2024-07-29's own network
     * stack refuses to start in it on this kernel (its root-namespace check looks for
     * /proc/sys/net/core/rmem_default, which newer kernels have in every namespace), so a nat
     * sandbox uses runsc's host network mode inside that private namespace: its sockets are the
     * host kernel's, in a namespace with only lo and the NAT's tap0 (docs/gvisor.md).
     */
    @Override
    public Launch start(Sandbox s, SandboxPaths paths) {
        try {
            if (Files.exists(paths.dir().resolve(POOL_MARKER))) {
                Optional<Launch> claimed = claimPooled(s, paths);
                if (claimed.isPresent()) {
                    return claimed.get();
                }
            }
            if (!s.nat()) {
                // a plain sandbox's first start (no layer yet: not a workspace's copy) keeps the pool full
                boolean plain = !Files.exists(oci.writableLayer(paths));
                Launch l = oci.start(s, paths, spec(s, paths, new ContainerSpec.Network.None()), startLimit, origin());
                if (plain) {
                    refill(poolKey(s), s, Duration.ZERO);
                }
                // Its running record may lapse in a host crash: the record before it (created or
                // stopped) starts the sandbox from the same layer, as a start after the crash would.
                return new Launch(l.pid(), l.origin(), l.agentAnswered(), true);
            }
            OciContainers c = oci.require();
            OciContainers nat = Objects.requireNonNull(natContainers);
            oci.clearDead(c, s, paths);
            Path dir = AirlockDirs.ensureDir(OciSandboxes.containerDir(paths.dir()));
            Path netns = Slirp4netns.startInNewNamespace(
                    dir, NatCgroup.of(dirs, s.id()).procs(), startLimit);
            try {
                Container ct = nat.create(spec(s, paths, new ContainerSpec.Network.NatNamespace(netns)), startLimit);
                return new Launch(nat.initPid(ct), origin() + ", nat", true);
            } catch (RuntimeException e) {
                Slirp4netns.stop(dir);
                throw e;
            }
        } catch (ContainerException e) {
            throw SandboxException.failed("gVisor could not start sandbox '" + s.name() + "': " + e.getMessage());
        }
    }

    // ---- warm pool -------------------------------------------------------------------------

    /** What a pooled sandbox must share with a new one to stand in for it. */
    private static String poolKey(Sandbox s) {
        return s.imageId().substring(0, 12) + "-m" + s.resources().memoryMiB() + "-c"
                + s.resources().cpus() + "-p" + s.resources().pids() + "-d"
                + s.resources().diskMiB();
    }

    @Override
    public Optional<String> claimReady(Sandbox fresh) {
        WarmPool p = pool;
        if (p == null || fresh.nat()) {
            return Optional.empty();
        }
        return p.take(poolKey(fresh), fresh.resources().memoryMiB());
    }

    /**
     * Hands a started pool sandbox its name, on the session it was filled through (its
     * machine-id, its own since then, was given there too), without waiting for the answer: the
     * agent applies it before it serves the next session. Without that session, its name and a
     * new machine-id on a new one, answered. If it is gone (its kept session has ended) or does
     * not answer, empty: the sandbox starts as if it had never been pooled.
     */
    private Optional<Launch> claimPooled(Sandbox s, SandboxPaths paths) {
        String key = WarmPool.keyOf(paths.dir(), POOL_MARKER);
        HostFiles.deleteTree(paths.dir().resolve(POOL_MARKER));
        OciContainers c = oci.require();
        GuestChannel kept = pooledSessions.remove(paths.dir().getFileName().toString());
        try (GuestChannel ch = kept != null ? kept : GuestChannel.connect(oci.agent(paths), startLimit)) {
            if (!ch.isOpen()) {
                throw new IOException("its session ended while it waited (its Sentry is gone)");
            }
            if (ch == kept) {
                // Not waited for: the agent applies it before it serves the next session (the
                // first command's), so waiting would only add a round trip through the Sentry.
                ch.sendIdentity(GuestIdentity.onlyHostname(s.name()));
            } else {
                ch.setIdentity(GuestIdentity.named(s.name()), startLimit);
            }
        } catch (IOException | RuntimeException e) {
            progress.step(
                    "warning: warm-pool sandbox for " + s.name() + " unusable (" + e.getMessage() + "); starting anew");
            oci.kill(s, paths);
            return Optional.empty();
        } catch (InterruptedException e) {
            oci.kill(s, paths);
            Thread.currentThread().interrupt();
            throw SandboxException.failed("interrupted while starting sandbox " + s.name());
        }
        refill(key, s, REFILL_AFTER);
        // Its running record may lapse in a host crash: back to created, it starts anew from its
        // own layer (the pool marker is gone), as it would after the crash.
        return Optional.of(new Launch(c.initPid(oci.container(c, s, paths)), origin() + ", pool", true, true));
    }

    private void refill(String key, Sandbox like, Duration after) {
        WarmPool p = pool;
        if (p != null) {
            imageOfKey.put(key, like.imageFile());
            p.refill(key, like, after);
        }
    }

    /**
     * Starts one pool sandbox for {@code key} in the directory of {@code id}, runs one command in
     * it and gives it a machine-id; the session stays open for the claim.
     */
    private void fillPool(String key, Sandbox like, String id) {
        Sandbox s = like.copyAs(id, "airlock");
        SandboxPaths paths = new SandboxPaths(
                AirlockDirs.ensureDir(dirs.sandboxes().resolve(id)),
                dirs.runtime().resolve(id.substring(0, 16)));
        oci.prepare(paths, null, s.resources().diskMiB(), null);
        oci.start(s, paths, spec(s, paths, new ContainerSpec.Network.None()), startLimit, origin());
        // The first command in a new Sentry is several times slower than the next (its first
        // fork and exec, the first reads through its file cache): pay it here, not in the claim.
        GuestChannel ch = null;
        try {
            ch = GuestChannel.connect(oci.agent(paths), startLimit);
            ch.exec(ExecSpec.of("true"), OutputStream.nullOutputStream(), OutputStream.nullOutputStream())
                    .await();
            ch.setIdentity(GuestIdentity.onlyNewMachineId(), startLimit);
            pooledSessions.put(id, ch);
        } catch (IOException | RuntimeException e) {
            closeQuietly(ch);
            oci.kill(s, paths);
            throw SandboxException.failed("the pooled sandbox did not run a command: " + e.getMessage());
        } catch (InterruptedException e) {
            closeQuietly(ch);
            oci.kill(s, paths);
            Thread.currentThread().interrupt();
            throw SandboxException.failed("interrupted");
        }
    }

    private static void closeQuietly(@Nullable GuestChannel ch) {
        if (ch != null) {
            ch.close();
        }
    }

    /**
     * Keeps {@code perKey} started sandboxes ready for every configuration (image, memory, CPUs,
     * process limit) a plain sandbox was started with, within {@code budgetMiB} of memory in all,
     * so a create only claims one. For the daemon; first ends the pool a previous daemon left.
     */
    public synchronized void enableWarmPool(int perKey, long budgetMiB) {
        sweepWarmPool();
        if (perKey > 0) {
            pool = new WarmPool(POOL_MARKER, perKey, budgetMiB, dirs.sandboxes(), this::fillPool, progress);
        }
    }

    /** Waits until the warm pool has no start under way (tests, benchmarks). */
    public void awaitWarmPool(Duration timeout) throws InterruptedException {
        WarmPool p = pool;
        if (p != null) {
            p.awaitIdle(timeout);
        }
    }

    /** Ends every pooled sandbox (this backend's and any a previous process left). */
    public synchronized void closeWarmPool(Duration wait) throws InterruptedException {
        WarmPool p = pool;
        pool = null;
        if (p != null) {
            p.awaitIdle(wait);
            p.drain();
        }
        sweepWarmPool();
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
        for (Path d : WarmPool.leftovers(dirs.sandboxes(), POOL_MARKER)) {
            endPooled(d);
        }
    }

    /** Ends the sandbox of a pooled (record-less) directory and deletes its directories. */
    private void endPooled(Path dir) {
        String id = dir.getFileName().toString();
        closeQuietly(pooledSessions.remove(id));
        SandboxPaths paths = new SandboxPaths(dir, dirs.runtime().resolve(id.substring(0, 16)));
        oci.destroyLeftover(id, paths);
        HostFiles.deleteTree(dir);
        HostFiles.deleteTree(paths.runtimeDir());
    }

    @Override
    public boolean running(Sandbox s, SandboxPaths paths) {
        return sentryAlive(paths);
    }

    /**
     * Whether the sandbox's Sentry runs, from its host process. The engine asks on every inspect
     * and the daemon's watchdog every second per sandbox; {@code runsc state} would start a Go
     * program and call into the Sentry each time (~40 ms of CPU here), and would call a sandbox
     * frozen for a fork not running. The pid file names the Sentry's process (see {@link
     * OciContainers#sandboxProcess}).
     */
    private static boolean sentryAlive(SandboxPaths paths) {
        return OciContainers.sandboxProcess(OciSandboxes.containerDir(paths.dir()))
                .isPresent();
    }

    @Override
    public void kill(Sandbox s, SandboxPaths paths) {
        oci.kill(s, paths);
    }

    @Override
    public void awaitStop(Sandbox s, SandboxPaths paths, Duration grace) {
        oci.awaitStop(s, paths, grace);
    }

    @Override
    public void release(Sandbox s, SandboxPaths paths) {
        oci.release(s, paths);
    }

    @Override
    public void releaseForRemoval(Sandbox s, SandboxPaths paths) {
        oci.releaseForRemoval(s, paths);
    }

    @Override
    public AgentEndpoint agent(Sandbox s, SandboxPaths paths) {
        return oci.agent(paths);
    }

    @Override
    public Path writableLayer(SandboxPaths paths) {
        return oci.writableLayer(paths);
    }

    @Override
    public Path log(SandboxPaths paths) {
        return oci.log(paths);
    }

    @Override
    public ResourceUse usage(Sandbox s, SandboxPaths paths) {
        return oci.usage(s, paths);
    }

    // ---- checkpoint and restore --------------------------------------------------------------

    /**
     * Saves the sandbox with {@code runsc checkpoint} and ends it. The agent first closes its
     * host socket (a checkpoint cannot hold one); if the checkpoint fails, it listens again and
     * the sandbox keeps running.
     */
    @Override
    public void pause(Sandbox s, SandboxPaths paths, Runnable recordPaused) {
        refuseNat(s, "pause");
        OciContainers c = oci.require();
        Container ct = oci.container(c, s, paths);
        Path image = paths.dir().resolve(PAUSED);
        HostFiles.deleteTree(image);
        AirlockDirs.ensureDir(image);
        suspendListener(c, ct);
        Failpoint.reached("gvisor-pause-listener-closed");
        HostCommand.Result r = HostCommand.run(
                c.runtime().command("checkpoint", "--image-path", image.toString(), "--compression", "none", ct.id()),
                null,
                null);
        if (!r.ok()) {
            HostFiles.deleteTree(image);
            resumeListener(c, ct);
            throw SandboxException.failed(
                    "runsc checkpoint failed: " + r.output().strip() + "; the sandbox keeps running");
        }
        // Once the Sentry ends, the checkpoint is the only copy of the sandbox's memory, and the
        // disk holds its files: both are written out before the record says paused.
        HostFiles.syncFilesystem(oci.writableLayer(paths));
        HostFiles.syncTree(image);
        recordPaused.run();
        // The checkpoint ended the sandbox; its container record and overlay go.
        c.destroy(ct);
    }

    @Override
    public Launch resume(Sandbox s, SandboxPaths paths) {
        Path image = paths.dir().resolve(PAUSED);
        if (!Files.isDirectory(image)) {
            throw SandboxException.failed("the saved state of '" + s.name() + "' is missing (" + image + ")");
        }
        return new Launch(restore(s, paths, image, false), "resumed", true);
    }

    /**
     * Continues a sandbox that a pause or fork cut short by a crash left half-way: frozen for a
     * fork's checkpoint ({@code runsc resume}; refused harmlessly when it is not frozen) and its
     * agent's host socket closed (SIGUSR2 opens it again; an agent that listens ignores it).
     * Without this its agent never listened again, and the next daemon, finding no agent, ended
     * the sandbox. Nothing to do when the Sentry is gone.
     */
    @Override
    public void thaw(Sandbox s, SandboxPaths paths) {
        if (!sentryAlive(paths)) {
            return;
        }
        OciContainers c = oci.require();
        Container ct = oci.container(c, s, paths);
        runsc(c, "resume", ct.id());
        resumeListener(c, ct);
    }

    @Override
    public void discardPaused(SandboxPaths paths) {
        HostFiles.deleteTree(paths.dir().resolve(PAUSED));
    }

    /** A nat sandbox's sockets are the host kernel's, which a checkpoint cannot save. */
    private static void refuseNat(Sandbox s, String what) {
        if (s.nat()) {
            throw SandboxException.conflict(what + " of '" + s.name() + "' is not available: a gvisor sandbox with"
                    + " --network nat uses the host's network stack, which runsc cannot checkpoint");
        }
    }

    /**
     * Checkpoints the running source (frozen meanwhile, so its files and memory match) and
     * leaves it running, copies its writable layer, then restores each clone from the one image
     * into its own copy of that layer and gives it its own hostname and machine-id.
     */
    @Override
    public List<CloneResult> fork(Sandbox src, SandboxPaths srcPaths, List<Clone> clones) {
        refuseNat(src, "fork");
        OciContainers c = oci.require();
        Container ct = oci.container(c, src, srcPaths);
        Path work = AirlockDirs.ensureDir(
                dirs.data().resolve("forks").resolve(Names.newId().substring(0, 16)));
        Path image = AirlockDirs.ensureDir(work.resolve("image"));
        Path layer = work.resolve("upper");
        try {
            suspendListener(c, ct);
            boolean frozen = false;
            try {
                frozen = runsc(c, "pause", ct.id()).ok();
                HostCommand.Result r = runsc(
                        c,
                        "checkpoint",
                        "--leave-running",
                        "--image-path",
                        image.toString(),
                        "--compression",
                        "none",
                        ct.id());
                if (!r.ok()) {
                    throw SandboxException.failed(
                            "runsc checkpoint failed: " + r.output().strip());
                }
                Failpoint.reached("gvisor-fork-saved");
                OciSandboxes.copyUpper(oci.writableLayer(srcPaths), layer);
            } finally {
                if (frozen) {
                    runsc(c, "resume", ct.id());
                }
                resumeListener(c, ct);
            }
            List<Future<Long>> started = new ArrayList<>();
            try (var threads = Executors.newVirtualThreadPerTaskExecutor()) {
                for (Clone clone : clones) {
                    started.add(threads.submit(() -> {
                        oci.prepare(
                                clone.paths(),
                                layer,
                                clone.sandbox().resources().diskMiB(),
                                null);
                        return restore(clone.sandbox(), clone.paths(), image, true);
                    }));
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
            HostFiles.deleteTree(work);
        }
    }

    /**
     * Restores a sandbox from a checkpoint image into its own bundle and waits for its agent;
     * a clone then gets its own name. Returns the Sentry's pid.
     */
    private long restore(Sandbox s, SandboxPaths paths, Path image, boolean newIdentity) {
        OciContainers c = oci.require();
        oci.clearDead(c, s, paths);
        ContainerSpec spec = spec(s, paths, new ContainerSpec.Network.None());
        Container ct;
        try {
            ct = c.restore(spec, image, startLimit, restored -> c.runtime().kill(restored.id(), "USR2"));
        } catch (ContainerException e) {
            throw SandboxException.failed("runsc restore of '" + s.name() + "' failed: " + e.getMessage());
        }
        if (newIdentity) {
            try (GuestChannel ch = GuestChannel.connect(oci.agent(paths), startLimit)) {
                ch.setIdentity(GuestIdentity.named(s.name()));
            } catch (IOException | RuntimeException e) {
                c.destroy(ct);
                throw SandboxException.failed("the restored sandbox did not take its name: " + e.getMessage());
            } catch (InterruptedException e) {
                c.destroy(ct);
                Thread.currentThread().interrupt();
                throw SandboxException.failed("interrupted while restoring " + s.name());
            }
        }
        return c.initPid(ct);
    }

    private static HostCommand.Result runsc(OciContainers c, String... args) {
        return HostCommand.run(c.runtime().command(args), null, null);
    }

    /** SIGUSR1: the agent ends its session and closes its host socket; its file going is the answer. */
    private static void suspendListener(OciContainers c, Container ct) {
        if (!c.runtime().kill(ct.id(), "USR1")) {
            throw SandboxException.conflict("the sandbox's gVisor container " + ct.id() + " is not running");
        }
        awaitSocket(ct, false);
    }

    /** SIGUSR2: the agent listens again. */
    private static void resumeListener(OciContainers c, Container ct) {
        if (c.runtime().kill(ct.id(), "USR2")) {
            awaitSocket(ct, true);
        }
    }

    private static void awaitSocket(Container ct, boolean present) {
        long deadline = System.nanoTime() + LISTENER_LIMIT.toNanos();
        while (Files.exists(ct.socket()) != present) {
            if (System.nanoTime() > deadline) {
                throw SandboxException.failed("the agent of " + ct.id() + " did not "
                        + (present ? "listen again" : "close its socket") + " within " + LISTENER_LIMIT.toSeconds()
                        + " s");
            }
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw SandboxException.failed("interrupted");
            }
        }
    }

    private static @Nullable String blankToNull(@Nullable String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }
}
