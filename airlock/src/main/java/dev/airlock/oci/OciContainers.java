package dev.airlock.oci;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.host.RotatingLog;
import dev.airlock.net.UntrustedText;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Sandboxes as OCI containers: the runtime-independent life cycle the engine needs.
 *
 * <p>{@link #create}: mount the image once (shared), mount an overlay whose upper and work
 * directories live in the sandbox directory (the base is never copied), write config.json, run
 * the container detached (it outlives this process), wait until the agent accepts a session.
 * {@link #attach}: find a container again by id and sandbox directory, from any process.
 * {@link #destroy}: kill, delete (the runtime removes the cgroup), unmount the overlay. The
 * image stays mounted for the next container (mounting it is a loop device setup, about as long
 * as the rest of a start); {@link ImageMounts#release} unmounts it when the image is removed.
 */
public final class OciContainers {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final OciRuntime runtime;
    private final ImageMounts images;
    private final String cgroupParent;

    public OciContainers(OciRuntime runtime, ImageMounts images) {
        this(runtime, images, ContainerCgroup.parentForThisProcess());
    }

    public OciContainers(OciRuntime runtime, ImageMounts images, String cgroupParent) {
        this.runtime = runtime;
        this.images = images;
        this.cgroupParent = cgroupParent;
    }

    public OciRuntime runtime() {
        return runtime;
    }

    public ImageMounts images() {
        return images;
    }

    public ContainerCgroup cgroupFor(String id) {
        return new ContainerCgroup(cgroupParent + "/" + id);
    }

    /** Creates and starts a container, returning once its agent answers. */
    public Container create(ContainerSpec spec, Duration timeout) {
        return launch(spec, List.of("run"), timeout, c -> {});
    }

    /**
     * Brings a container up from a saved image ({@code restore}, runsc only): the same bundle as
     * {@link #create}, the runtime's restore instead of its run. {@code whenRunning} runs once the
     * runtime reports the container running, before the agent is waited for (the restored agent
     * must be told to listen again); it is retried until the agent answers.
     */
    public Container restore(ContainerSpec spec, Path imageDir, Duration timeout, Consumer<Container> whenRunning) {
        return launch(spec, List.of("restore", "--image-path", imageDir.toString()), timeout, whenRunning);
    }

    /** The pid file the runtime writes when it starts a container. */
    public static Path pidFile(Path sandboxDir) {
        return sandboxDir.resolve("container.pid");
    }

    private Container launch(ContainerSpec spec, List<String> how, Duration timeout, Consumer<Container> whenRunning) {
        Container c = prepare(spec);
        try {
            if (spec.network() instanceof ContainerSpec.Network.Nat
                    || spec.network() instanceof ContainerSpec.Network.NatNamespace) {
                Files.writeString(spec.sandboxDir().resolve(OciConfig.RESOLV_CONF), "nameserver 10.0.2.3\n");
            }
            OciConfig.write(OciConfig.forAgent(spec, c.rootfs(), c.cgroup().path()), c.bundle());
            Path pidFile = pidFile(spec.sandboxDir());
            List<String> args = new java.util.ArrayList<>(how);
            args.addAll(List.of("--bundle", c.bundle().toString(), "--pid-file", pidFile.toString(), spec.id()));
            Process monitor = runtime.monitor(args, pidFile, c.log());
            awaitAgent(c, monitor, timeout, whenRunning);
            if (spec.network() instanceof ContainerSpec.Network.Nat nat) {
                // Up before create returns, so the first command the sandbox runs has its network.
                Slirp4netns.start(spec.sandboxDir(), initPid(c), nat.cgroupProcs(), spec.ids(), timeout);
            }
            return c;
        } catch (IOException e) {
            try {
                destroy(c);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw new UncheckedIOException("cannot write the network settings of " + spec.id(), e);
        } catch (RuntimeException e) {
            try {
                destroy(c);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /**
     * Mounts the root filesystem and lays out the sandbox directory for {@code spec}, without
     * writing a config or starting anything (the benchmark's baseline uses the same rootfs).
     */
    public Container prepare(ContainerSpec spec) {
        Container c = new Container(spec.id(), spec.sandboxDir(), spec.image(), spec.socket(), cgroupFor(spec.id()));
        try {
            // The container's config (its environment), layers and log: the owner's alone. The
            // runtime, root, needs no access for others to set the container up.
            AirlockDirs.ensureOwnerOnlyDir(c.sandboxDir());
            AirlockDirs.ensureOwnerOnlyDir(c.bundle());
            Files.createDirectories(c.rootfs());
            LayerDisk.mount(c.sandboxDir());
            Files.createDirectories(c.upper());
            Files.createDirectories(c.work());
            Files.createDirectories(spec.socketDir());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot lay out " + spec.sandboxDir(), e);
        }
        ContainerIds ids = spec.ids();
        if (ids != null) {
            // What container root writes: the overlay's upper and work directories (the files in
            // them it writes as its host uid) and, below, the directory its agent makes its socket in.
            ids.own(c.upper());
            ids.own(c.work());
            // The runtime looks the root up from the bundle as container root: it may pass
            // through (only), and only those already in the owner-only sandbox directory can.
            try {
                Files.setPosixFilePermissions(
                        c.bundle(), java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot open " + c.bundle() + " to container root", e);
            }
        }
        Path lower = ids == null ? images.acquire(spec.image()) : images.acquire(spec.image(), ids);
        if (!Mounts.isMountPoint(c.rootfs())) {
            try {
                Mounts.mountOverlay(
                        c.rootfs(), "lowerdir=" + lower + ",upperdir=" + c.upper() + ",workdir=" + c.work());
            } catch (RuntimeException e) {
                images.release(spec.image());
                throw e;
            }
        }
        // Last, so a failure above leaves nothing mounted there; container root makes its socket in it.
        Mounts.mountSocketDir(spec.socketDir());
        if (ids != null) {
            ids.own(spec.socketDir());
        }
        return c;
    }

    /** A container created earlier (by this or another process), if the runtime still has it. */
    public Optional<Container> attach(String id, Path sandboxDir) {
        if (runtime.state(id).isEmpty()) {
            return Optional.empty();
        }
        Path config = sandboxDir.resolve("bundle").resolve("config.json");
        try {
            JsonNode root = JSON.readTree(Files.readString(config));
            Path socket = null;
            Path image = null;
            for (JsonNode m : root.path("mounts")) {
                if (m.path("destination").asString().equals(OciConfig.AGENT_DIR)) {
                    socket = Path.of(m.path("source").asString()).resolve(OciConfig.AGENT_SOCKET);
                }
            }
            Path imageRecord = sandboxDir.resolve("image");
            if (Files.exists(imageRecord)) {
                image = Path.of(Files.readString(imageRecord).strip());
            }
            if (socket == null || image == null) {
                throw new ContainerException("incomplete container record in " + sandboxDir);
            }
            return Optional.of(new Container(
                    id,
                    sandboxDir,
                    image,
                    socket,
                    new ContainerCgroup(root.path("linux").path("cgroupsPath").asString())));
        } catch (IOException e) {
            throw new ContainerException("cannot read the container record in " + sandboxDir, e);
        }
    }

    /** The runtime's view of the container, or empty once it is deleted. */
    public Optional<OciRuntime.State> state(Container c) {
        return runtime.mayKnow(c.id()) ? runtime.state(c.id()) : Optional.empty();
    }

    /** The host pid of the container's init, as the runtime wrote it at start; 0 if unknown. */
    public long initPid(Container c) {
        try {
            return Long.parseLong(
                    Files.readString(c.sandboxDir().resolve("container.pid")).strip());
        } catch (IOException | NumberFormatException e) {
            return state(c).map(st -> (long) st.pid()).orElse(0L);
        }
    }

    /**
     * Stops and removes the container and its mounts; keeps the sandbox directory (the overlay's
     * upper layer is the sandbox's data). Safe to repeat and on half-created containers.
     */
    public void destroy(Container c) {
        Slirp4netns.stop(c.sandboxDir());
        if (runtime.kind() == OciRuntime.Kind.RUNSC) {
            // Killed, the container's monitor (runsc run, see OciRuntime#monitor) deletes it and
            // its cgroup; its state file going says so without a runsc call (each ~40 ms of CPU
            // here; this was state, kill, state until stopped, delete). A forced delete while
            // the monitor lives waits 5 s and fails (runsc 2024-07-29): only what is left gets it.
            // The kill is a SIGKILL to the sandbox process (the Sentry, the container's kernel:
            // the container ends with it) rather than `runsc kill`, a Go program that took 200-290
            // ms of a removal on this host under load where the state went 30-60 ms after the
            // signal; runsc kill stays for a sandbox process that cannot be found.
            if (runtime.mayKnow(c.id())) {
                boolean killed = sandboxProcess(c.sandboxDir())
                                .map(ProcessHandle::destroyForcibly)
                                .orElse(false)
                        || runtime.kill(c.id(), "KILL");
                if (killed) {
                    awaitForgotten(c.id(), Duration.ofSeconds(10));
                }
                if (runtime.mayKnow(c.id())) {
                    runtime.delete(c.id(), true);
                }
            }
        } else if (state(c).isPresent()) {
            runtime.kill(c.id(), "KILL");
            awaitStopped(c.id(), Duration.ofSeconds(10));
            runtime.delete(c.id(), true);
        }
        Mounts.unmount(c.rootfs());
        if (Files.isDirectory(c.image())) {
            // an idmapped view of a directory image is this container's alone: it goes with it
            images.release(c.image());
        }
        Path socketDir = c.socket().getParent();
        if (socketDir != null) {
            // its tmpfs, with whatever the sandbox put there; a lazy detach if busy is safe, as
            // the next start mounts a fresh one
            Mounts.unmount(socketDir);
        }
        try {
            Files.deleteIfExists(c.socket());
        } catch (IOException e) {
            // a stale socket is harmless: create mounts a fresh directory
        }
    }

    /**
     * Unmounts whatever is still mounted below a sandbox directory (deepest first), so that
     * deleting the directory can never reach through a mount into an image or another layer.
     */
    public void unmountAllUnder(Path sandboxDir) {
        for (Path m : deepestFirst(sandboxDir)) {
            Mounts.unmount(m);
        }
    }

    private static List<Path> deepestFirst(Path dir) {
        List<Path> mounts = new java.util.ArrayList<>(Mounts.under(dir));
        mounts.sort(java.util.Comparator.comparingInt(Path::getNameCount).reversed());
        return mounts;
    }

    /**
     * Unmounts what a stopped sandbox holds below its directory (deepest first), each once it is
     * free. A mount still busy (a holder that does not go) stays mounted, and the next start uses
     * it as it is: detached lazily, the sandbox disk's file system would live on beside the one
     * the next start mounts from the same file, so writes the old one had not yet committed would
     * be missing from the new one, or land on the disk under it later.
     */
    public void releaseMountsUnder(Path sandboxDir) {
        for (Path m : deepestFirst(sandboxDir)) {
            Mounts.unmountWhenFree(m, Mounts.HOLDERS_EXIT);
        }
    }

    /** {@link #destroy} and then delete the sandbox directory. */
    public void remove(Container c) {
        destroy(c);
        unmountAllUnder(c.sandboxDir()); // its disk, if it has one
        if (!Mounts.under(c.sandboxDir()).isEmpty()) {
            throw new ContainerException("mounts remain under " + c.sandboxDir() + ": " + Mounts.under(c.sandboxDir()));
        }
        HostFiles.deleteTree(c.sandboxDir());
    }

    /**
     * runsc's sandbox process (the Sentry) of a container directory, from the pid file runsc
     * wrote, while it runs. Its command line must name this directory's bundle, so a reused pid
     * is never taken for it (and the handle, tied to the process's start time, signals no other).
     */
    public static Optional<ProcessHandle> sandboxProcess(Path containerDir) {
        try {
            long pid = Long.parseLong(Files.readString(pidFile(containerDir)).strip());
            Optional<ProcessHandle> handle = ProcessHandle.of(pid);
            Path proc = Path.of("/proc", Long.toString(pid));
            // arguments end in NUL; as lines, one argument is matched whole
            String cmdline = new String(Files.readAllBytes(proc.resolve("cmdline")), StandardCharsets.UTF_8)
                    .replace('\u0000', '\n');
            String stat = Files.readString(proc.resolve("stat"));
            int end = stat.lastIndexOf(')');
            boolean zombie = end < 0 || end + 2 >= stat.length() || stat.charAt(end + 2) == 'Z';
            boolean ours = cmdline.contains("\n--bundle=" + containerDir.resolve("bundle") + "\n");
            return zombie || !ours ? Optional.empty() : handle;
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** Waits until runsc holds no state for the container (its monitor deleted it). */
    private void awaitForgotten(String id, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (runtime.mayKnow(id) && System.nanoTime() < deadline) {
            sleep(2);
        }
    }

    private void awaitStopped(String id, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<OciRuntime.State> s = runtime.state(id);
            if (s.isEmpty() || s.get().status().equals("stopped")) {
                return;
            }
            sleep(5);
        }
    }

    private void awaitAgent(Container c, Process monitor, Duration timeout, Consumer<Container> whenRunning) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            Files.writeString(c.sandboxDir().resolve("image"), c.image() + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        long nextNudge = 0;
        while (true) {
            if (Files.exists(c.socket()) && accepts(c.socket())) {
                return;
            }
            if (System.nanoTime() >= nextNudge && Files.exists(pidFile(c.sandboxDir()))) {
                // the runtime writes the pid file once the container runs
                whenRunning.accept(c);
                nextNudge = System.nanoTime() + Duration.ofMillis(200).toNanos();
            }
            if (System.nanoTime() > deadline) {
                throw new ContainerException(
                        "the agent in " + c.id() + " did not answer within " + timeout + ": " + logTail(c));
            }
            if (!monitor.isAlive()) {
                throw new ContainerException("container " + c.id() + " stopped before its agent answered: "
                        + OciRuntime.failure(c.id(), monitor, c.log()));
            }
            sleep(1);
        }
    }

    private static boolean accepts(Path socket) {
        try (SocketChannel ignored = new ContainerAgentSocket(socket).open()) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static String logTail(Container c) {
        return logTail(c.log());
    }

    /**
     * The end of a container's log for an error message. The container's root writes the log: its
     * size is the guest's to set (only blocks are capped), so at most the last 2000 bytes are read,
     * and they reach a terminal escaped.
     */
    static String logTail(Path log) {
        if (!Files.exists(log, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return "(no log)";
        }
        try {
            return UntrustedText.forTerminal(new String(RotatingLog.tail(log, 2000), StandardCharsets.UTF_8).strip());
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ContainerException("interrupted", e);
        }
    }

    /** Ids of the containers the runtime holds under our state root. */
    public List<String> list() {
        return runtime.list();
    }
}
