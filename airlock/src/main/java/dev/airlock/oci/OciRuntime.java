package dev.airlock.oci;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Drives an OCI runtime binary (crun, runc or gVisor's runsc) by its command line.
 *
 * <p>crun 1.8.1 refuses a "hybrid" cgroup layout, where cgroup v1 controllers sit under a tmpfs at
 * /sys/fs/cgroup and a cgroup2 mount at /sys/fs/cgroup/unified still holds a controller
 * (hugetlb here): it asks for all controllers to be dropped from cgroup v2, even with
 * {@code --cgroup-manager=disabled}. On such a host every crun command runs in a private mount
 * namespace of its own ({@code unshare --mount}) in which /sys/fs/cgroup/unified is unmounted.
 * crun then sees a plain cgroup v1 host and drives the v1 memory, cpu and pids controllers
 * through the cgroupfs manager, limits and all. The host's mounts are untouched; the container
 * gets its own mount namespace anyway. runc handles the layout as it is and runs unwrapped.
 */
public final class OciRuntime {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Path UNIFIED = Path.of("/sys/fs/cgroup/unified");

    /** The runtimes we know how to drive. */
    public enum Kind {
        CRUN,
        RUNC,
        RUNSC
    }

    /** What {@code <runtime> state} says about a container. */
    public record State(String id, String status, int pid, Path bundle) {
        public boolean running() {
            return status.equals("running") || status.equals("created");
        }
    }

    private final Path binary;
    private final Kind kind;
    private final Path stateRoot;
    private final boolean hideUnified;
    private final List<String> flags;

    /**
     * @param binary the runtime (a path or a name on PATH)
     * @param stateRoot the runtime's {@code --root}: where it keeps container state; one per
     *     Airlock installation, so our containers never mix with other tools' containers
     */
    public OciRuntime(Path binary, Path stateRoot) {
        this(binary, stateRoot, List.of());
    }

    /**
     * @param flags global flags every command of this runtime gets after {@code --root} (runsc's
     *     platform, network and file-system choices, which must be the same for all its commands)
     */
    public OciRuntime(Path binary, Path stateRoot, List<String> flags) {
        this.binary = binary;
        String name = binary.getFileName().toString().toLowerCase(Locale.ROOT);
        this.kind = name.contains("runsc") ? Kind.RUNSC : name.contains("runc") ? Kind.RUNC : Kind.CRUN;
        this.stateRoot = stateRoot.toAbsolutePath();
        this.hideUnified = kind == Kind.CRUN && hybridWithV2Controllers();
        this.flags = List.copyOf(flags);
    }

    /**
     * The runtime named by {@code AIRLOCK_OCI_RUNTIME} (a path or name), else crun, else runc;
     * state under {@code stateRoot}.
     */
    public static OciRuntime detect(Path stateRoot) {
        String chosen = System.getenv("AIRLOCK_OCI_RUNTIME");
        if (chosen != null && !chosen.isBlank()) {
            return new OciRuntime(Path.of(chosen), stateRoot);
        }
        for (String name : List.of("crun", "runc")) {
            Optional<Path> found = onPath(name);
            if (found.isPresent()) {
                return new OciRuntime(found.get(), stateRoot);
            }
        }
        throw new ContainerException("no OCI runtime found: install crun or runc, or set AIRLOCK_OCI_RUNTIME");
    }

    public static Optional<Path> onPath(String name) {
        String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
        for (String d : (path + ":/usr/sbin:/sbin").split(":")) {
            Path p = Path.of(d.isEmpty() ? "." : d, name);
            if (Files.isExecutable(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    public Kind kind() {
        return kind;
    }

    public Path binary() {
        return binary;
    }

    /** Whether crun commands run in a private mount namespace without the cgroup2 mount. */
    public boolean hidesUnifiedCgroup() {
        return hideUnified;
    }

    /**
     * True on a tmpfs /sys/fs/cgroup (cgroup v1) with a cgroup2 mount at unified that holds
     * controllers: the layout crun 1.8.1 refuses.
     */
    static boolean hybridWithV2Controllers() {
        boolean v1 = false;
        boolean unified = false;
        for (Mounts.Entry e : Mounts.list()) {
            if (e.mountPoint().equals(Path.of("/sys/fs/cgroup")) && e.type().equals("tmpfs")) {
                v1 = true;
            }
            if (e.mountPoint().equals(UNIFIED) && e.type().equals("cgroup2")) {
                unified = true;
            }
        }
        if (!v1 || !unified) {
            return false;
        }
        try {
            return !Files.readString(UNIFIED.resolve("cgroup.controllers")).isBlank();
        } catch (IOException e) {
            return false;
        }
    }

    /** The full command line for one runtime subcommand, wrapped when the layout needs it. */
    public List<String> command(String... args) {
        List<String> argv = new ArrayList<>();
        if (hideUnified) {
            argv.addAll(List.of(
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/sh",
                    "-c",
                    "umount " + UNIFIED + " && exec \"$@\"",
                    "oci-runtime"));
        }
        argv.add(binary.toString());
        argv.add("--root");
        argv.add(stateRoot.toString());
        argv.addAll(flags);
        argv.addAll(List.of(args));
        return argv;
    }

    public Path stateRoot() {
        return stateRoot;
    }

    /**
     * Creates and starts a container whose runtime process stays as its monitor (what conmon is
     * to podman): {@code run} without {@code --detach}, not waited for. It is ready sooner than a
     * detached start (measured ~8 ms of ~45), costs a small process per container, and when the
     * container's init exits the runtime deletes the container. The monitor is not tied to this
     * JVM: if we die, it and the container live on. Output of both goes to {@code log}.
     *
     * @return the monitor, to notice a container that fails to start
     */
    public Process runMonitored(String id, Path bundle, Path pidFile, Path log) {
        return monitor(
                List.of("run", "--bundle", bundle.toString(), "--pid-file", pidFile.toString(), id), pidFile, log);
    }

    /**
     * Runs a subcommand that stays as the container's monitor ({@code run}, runsc's {@code
     * restore}), not waited for; see {@link #runMonitored}.
     */
    public Process monitor(List<String> args, Path pidFile, Path log) {
        try {
            Files.createDirectories(stateRoot);
            Files.deleteIfExists(pidFile);
            // What the container prints: the owner's alone, and appended (the daemon caps it by truncation).
            HostFiles.ownerOnlyFile(log);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<String> argv = command(args.toArray(String[]::new));
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        try {
            return pb.start();
        } catch (IOException e) {
            throw new ContainerException("cannot run " + binary, e);
        }
    }

    /** The last lines of a container's log, for error messages. */
    static String failure(String id, Process monitor, Path log) {
        return id + " ended (runtime exit " + monitor.exitValue() + "): " + tail(log);
    }

    /**
     * Whether the runtime may hold state for {@code id}: crun and runc keep a directory per
     * container under their root, runsc a {@code <sandbox>_sandbox:<container>.state} file. A
     * cheap check (no fork) before asking {@link #state}.
     */
    public boolean mayKnow(String id) {
        return kind == Kind.RUNSC
                ? Files.exists(stateRoot.resolve(id + "_sandbox:" + id + ".state"))
                : Files.isDirectory(stateRoot.resolve(id));
    }

    /** The container's state, or empty if the runtime does not know it. */
    public Optional<State> state(String id) {
        HostCommand.Result r = HostCommand.run(command("state", id), null, null);
        if (!r.ok()) {
            return Optional.empty();
        }
        String out = r.output();
        int brace = out.indexOf('{');
        if (brace < 0) {
            return Optional.empty();
        }
        JsonNode n = JSON.readTree(out.substring(brace));
        return Optional.of(new State(
                n.path("id").asString(),
                n.path("status").asString(),
                n.path("pid").asInt(),
                Path.of(n.path("bundle").asString("/"))));
    }

    /** Sends a signal (a name such as KILL or a number) to the container's init. */
    public boolean kill(String id, String signal) {
        return HostCommand.run(command("kill", id, signal), null, null).ok();
    }

    /** Removes a stopped container (or, forced, a running one) and its cgroup. */
    public void delete(String id, boolean force) {
        HostCommand.Result r =
                HostCommand.run(force ? command("delete", "--force", id) : command("delete", id), null, null);
        if (!r.ok() && state(id).isPresent()) {
            throw new ContainerException(
                    "cannot delete container " + id + ": " + r.output().strip());
        }
    }

    /** Runs a command in a running container with the runtime's own exec, for comparison. */
    public HostCommand.Result exec(String id, List<String> argv) {
        List<String> args = new ArrayList<>(List.of("exec", id));
        args.addAll(argv);
        return HostCommand.run(command(args.toArray(String[]::new)), null, null);
    }

    /** Ids of the containers under our state root. */
    public List<String> list() {
        HostCommand.Result r = HostCommand.run(command("list", "--quiet"), null, null);
        if (!r.ok()) {
            return List.of();
        }
        return r.output().lines().map(String::strip).filter(s -> !s.isEmpty()).toList();
    }

    private static String tail(@Nullable Path log) {
        return log == null ? "" : OciContainers.logTail(log);
    }
}
