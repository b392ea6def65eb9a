package dev.airlock.ociruntime;

import dev.airlock.client.DaemonClient;
import dev.airlock.guest.ProcessConfinement;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessExit;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.SandboxService;
import dev.airlock.service.SandboxSession;
import dev.airlock.wire.Json;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * {@code airlock-runtime}: runc's command line, the subset conmon (podman) and containerd's runc
 * shim call, running each container's process in an Airlock microVM. The bundle's rootfs is the
 * VM's root (shared over virtio-9p); the VM runs as an ordinary sandbox of the daemon. The pid a
 * caller waits for is a {@link StandIn}: a host process that relays the container process's stdio
 * and exits with its status, started by {@code create} so conmon and the shim (subreapers) reap it.
 *
 * <p>Errors go to stderr and, with {@code --log}, to that file as runc writes them (one JSON
 * object per line with {@code --log-format json}); every failure exits 1, as runc's do.
 */
public final class AirlockRuntime {
    static final String VERSION = "0.1.0";
    static final String SPEC_VERSION = "1.0.2";
    private static final Pattern ID = Pattern.compile("[\\w+.-]{1,1024}");
    private static final Duration START_WAIT = Duration.ofSeconds(60);
    /** Written by {@code pause}, removed by {@code resume}: the container's processes are frozen. */
    private static final String PAUSED = "paused";
    /** How long a built-in in the guest (freeze, a cgroup limit) may take. */
    private static final Duration GUEST_STEP = Duration.ofSeconds(30);

    private Path root = Path.of("/run/airlock-runtime");
    private @Nullable Path log;
    private boolean jsonLog;
    private final PrintStream out = System.out;

    public static void main(String[] args) {
        AirlockRuntime r = new AirlockRuntime();
        int status;
        try {
            status = r.run(List.of(args));
        } catch (RuntimeError | SandboxException e) {
            r.error(String.valueOf(e.getMessage()));
            status = 1;
        }
        System.out.flush();
        System.exit(status);
    }

    int run(List<String> all) {
        Args a = new Args(all);
        // Global options come before the command, as with runc.
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            switch (Args.name(flag)) {
                case "--root" -> root = Path.of(a.value(flag));
                case "--log" -> log = Path.of(a.value(flag));
                case "--log-format" -> jsonLog = a.value(flag).equals("json");
                case "--debug" -> {}
                case "--systemd-cgroup" ->
                    throw new RuntimeError("--systemd-cgroup: a microVM is not placed in a systemd cgroup;"
                            + " use the cgroupfs manager (containers.conf cgroup_manager = \"cgroupfs\")");
                case "--version", "-v" -> {
                    out.println("airlock-runtime version " + VERSION + "\nspec: " + SPEC_VERSION);
                    return 0;
                }
                case "--help", "-h" -> {
                    out.println(usage());
                    return 0;
                }
                default -> throw new RuntimeError("unknown global option " + flag + "\n" + usage());
            }
        }
        if (!a.more()) {
            throw new RuntimeError(usage());
        }
        String command = a.next();
        return switch (command) {
            case "create" -> create(a, false);
            case "run" -> create(a, true);
            case "start" -> start(a);
            case "state" -> state(a);
            case "kill" -> kill(a);
            case "delete" -> delete(a);
            case "exec" -> exec(a);
            case "features" -> features();
            case "ps" -> ps(a);
            case "pause" -> pause(a, true);
            case "resume" -> pause(a, false);
            case "update" -> update(a);
            case "spec" -> spec(a);
            case "--version", "version" -> {
                out.println("airlock-runtime version " + VERSION + "\nspec: " + SPEC_VERSION);
                yield 0;
            }
            default ->
                throw new RuntimeError("unknown command '" + command + "': airlock-runtime supports create,"
                        + " run, start, state, kill, delete, exec, ps, pause, resume, update, spec, features,"
                        + " --version");
        };
    }

    private static String usage() {
        return "usage: airlock-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND\n"
                + "  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] ID\n"
                + "  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID\n"
                + "  exec --process FILE [--detach] [--pid-file FILE] ID | ps [--format table|json] ID\n"
                + "  pause ID | resume ID | update [--resources FILE|-] [--memory N] [--pids-limit N] ID\n"
                + "  spec [--bundle DIR] | features | --version";
    }

    // ---- create / start ------------------------------------------------------------------------

    private int create(Args a, boolean runToo) {
        Path bundle = Path.of(".");
        Path pidFile = null;
        Path console = null;
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            switch (Args.name(flag)) {
                case "--bundle", "-b" -> bundle = Path.of(a.value(flag));
                case "--pid-file" -> pidFile = Path.of(a.value(flag));
                case "--console-socket" -> console = Path.of(a.value(flag));
                case "--no-pivot", "--no-new-keyring" -> {} // a VM's root is never pivoted; keyrings are its own
                case "--preserve-fds" -> {
                    if (!a.value(flag).equals("0")) {
                        throw new RuntimeError(
                                "--preserve-fds: passing extra file descriptors into a microVM" + " is not supported");
                    }
                }
                default -> throw new RuntimeError("unknown option " + flag + " for create");
            }
        }
        String id = containerId(a);
        noMore(a);
        BundleConfig config = BundleConfig.read(bundle);
        checkTerminal(config.process(), console);
        String mode = config.mode();
        SandboxService service = service();
        // a microVM-mode container that joins a pod's namespaces runs in that pod's VM
        ContainerRecord pod = mode.equals("microvm") ? PodNamespaces.vmPod(ensureRoot(), config) : null;
        Map<String, String> namespaces = pod != null ? Map.of() : PodNamespaces.resolve(ensureRoot(), config, service);
        Path dir = ensureRoot().resolve(id);
        try {
            Files.createDirectory(dir);
        } catch (FileAlreadyExistsException e) {
            throw new RuntimeError("container with id exists: " + id);
        } catch (IOException e) {
            throw new RuntimeError("cannot create the state of container " + id + ": " + e.getMessage(), e);
        }
        if (pod != null) {
            return createInPod(pod, id, dir, config, service, pidFile, console, runToo);
        }
        String sandbox = sandboxName(id);
        boolean sandboxMade = false;
        StandIn.Handle standIn = null;
        try {
            StandIn.writeRequest(dir, config.process());
            Files.writeString(dir.resolve(ContainerRecord.PROCESS), Json.MAPPER.writeValueAsString(config.process()));
            DirectoryBinds.mount(config.rootfs(), config.binds(), dir);
            if (mode.equals("microvm") && VmPod.isSandbox(config)) {
                VmPod.prepareShare(config.rootfs(), dir);
            }
            HostCommand.check(List.of(
                    "mkfifo",
                    "-m",
                    "0600",
                    dir.resolve(ContainerRecord.START_FIFO).toString()));
            service.create(CreateSpec.builder()
                    .name(sandbox)
                    .image(config.rootfs().toString())
                    .runtime(mode)
                    .cpus(config.cpus())
                    .memoryMiB(config.memoryMiB())
                    .pids(config.pids())
                    .network("none")
                    .namespaces(namespaces)
                    .build());
            sandboxMade = true;
            service.start(sandbox);
            prepareGuest(service, sandbox, config, "");
            if (!config.replacedByVm().isEmpty()) {
                info("container " + id + " (" + mode + "): the sandbox boundary stands in for "
                        + String.join(", ", config.replacedByVm()));
            }
            standIn = StandIn.spawn(dir, sandbox, true, console == null ? null : ConsolePty.open(console));
            ContainerRecord record = new ContainerRecord(
                    id,
                    sandbox,
                    config.bundle().toString(),
                    standIn.pid(),
                    Instant.now().toString(),
                    config.annotations(),
                    null,
                    null);
            record.write(dir);
            createHooks(dir, record, config);
            if (pidFile != null) {
                writePidFile(pidFile, standIn.pid());
            }
        } catch (IOException | RuntimeException e) {
            if (standIn != null) {
                signal(standIn.pid(), 9);
            }
            if (sandboxMade) {
                removeQuietly(service, sandbox);
            }
            VmPod.releaseShare(dir);
            DirectoryBinds.unmount(dir);
            HostFiles.deleteTree(dir);
            throw createFailed(id, e);
        }
        return runToo ? startAndAwait(dir, id, standIn) : 0;
    }

    /** A create's failure as the runtime reports it, after its own cleanup. */
    private static RuntimeException createFailed(String id, Exception e) {
        if (e instanceof RuntimeError || e instanceof SandboxException) {
            return (RuntimeException) e;
        }
        return new RuntimeError("cannot create container " + id + ": " + e.getMessage(), e);
    }

    /** {@code run}'s second half: start the created container and relay its exit status. */
    private int startAndAwait(Path dir, String id, StandIn.Handle standIn) {
        startContainer(dir, id);
        poststart(dir, id);
        return StandIn.awaitExit(standIn);
    }

    /**
     * createRuntime and prestart, where runc runs them: the container's sandbox (or its place in
     * the pod's VM) exists and its process cannot run before start. The hooks are kept for
     * poststart and poststop.
     */
    private static void createHooks(Path dir, ContainerRecord record, BundleConfig config) throws IOException {
        if (config.hooks().hasNone()) {
            return;
        }
        Files.writeString(dir.resolve(HOOKS), Json.MAPPER.writeValueAsString(config.hooks()));
        String state = stateJson(record, "creating", record.pid());
        Hooks.run("createRuntime", config.hooks().createRuntime(), state, config.bundle());
        Hooks.run("prestart", config.hooks().prestart(), state, config.bundle());
    }

    /**
     * An app container of a microVM pod: no VM of its own. Its rootfs goes into the pod's share
     * and its process runs in the pod's VM with that as its root, relayed by its own stand-in
     * ({@link VmPod}). The VM's resources are the sandbox container's.
     */
    private int createInPod(
            ContainerRecord pod,
            String id,
            Path dir,
            BundleConfig config,
            SandboxService service,
            @Nullable Path pidFile,
            @Nullable Path console,
            boolean runToo) {
        StandIn.Handle standIn = null;
        try {
            ProcessSpec process =
                    VmPod.inPod(config.process(), config, ensureRoot().resolve(pod.id()));
            Files.writeString(dir.resolve(ContainerRecord.PROCESS), Json.MAPPER.writeValueAsString(process));
            DirectoryBinds.mount(config.rootfs(), config.binds(), dir);
            String guestRoot = VmPod.join(ensureRoot().resolve(pod.id()), id, config.rootfs(), dir);
            StandIn.writeRequest(dir, process, guestRoot);
            HostCommand.check(List.of(
                    "mkfifo",
                    "-m",
                    "0600",
                    dir.resolve(ContainerRecord.START_FIFO).toString()));
            prepareGuest(service, pod.sandbox(), config, guestRoot);
            info("container " + id + " runs in the VM of pod " + pod.id() + " (sandbox " + pod.sandbox()
                    + "), with its resources");
            standIn = StandIn.spawn(dir, pod.sandbox(), true, console == null ? null : ConsolePty.open(console));
            ContainerRecord record = new ContainerRecord(
                    id,
                    pod.sandbox(),
                    config.bundle().toString(),
                    standIn.pid(),
                    Instant.now().toString(),
                    config.annotations(),
                    pod.id(),
                    guestRoot);
            record.write(dir);
            createHooks(dir, record, config);
            if (pidFile != null) {
                writePidFile(pidFile, standIn.pid());
            }
        } catch (IOException | RuntimeException e) {
            if (standIn != null) {
                signal(standIn.pid(), 9);
                ProcessExit.await(standIn.pid(), Duration.ofSeconds(5));
            }
            VmPod.leave(dir);
            DirectoryBinds.unmount(dir);
            HostFiles.deleteTree(dir);
            throw createFailed(id, e);
        }
        return runToo ? startAndAwait(dir, id, standIn) : 0;
    }

    /** The container's hooks, kept from its config at create (poststart and poststop run later). */
    private static final String HOOKS = "hooks.json";

    private static Hooks hooks(Path dir) {
        Path f = dir.resolve(HOOKS);
        if (!Files.exists(f)) {
            return Hooks.NONE;
        }
        try {
            return Json.MAPPER.readValue(Files.readString(f), Hooks.class);
        } catch (IOException | RuntimeException e) {
            throw new RuntimeError("the hooks of " + dir.getFileName() + " are unreadable: " + e.getMessage(), e);
        }
    }

    /** poststart: after start; a failure is logged, not the start's (runtime-spec). */
    private void poststart(Path dir, String id) {
        Hooks hooks = hooks(dir);
        if (hooks.poststart().isEmpty()) {
            return;
        }
        ContainerRecord r = ContainerRecord.read(dir, id);
        try {
            Hooks.run("poststart", hooks.poststart(), stateJson(r, "running", r.pid()), Path.of(r.bundle()));
        } catch (RuntimeError e) {
            warn(String.valueOf(e.getMessage()));
        }
    }

    /** The runtime-spec state a hook reads on stdin. */
    private static String stateJson(ContainerRecord r, String status, long pid) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("ociVersion", SPEC_VERSION);
        s.put("id", r.id());
        s.put("status", status);
        s.put("pid", pid);
        s.put("bundle", r.bundle());
        s.put("annotations", r.annotations());
        return Json.MAPPER.writeValueAsString(s);
    }

    /** runc's rule: a console socket exactly when the process has a terminal. */
    private static void checkTerminal(ProcessSpec p, @Nullable Path console) {
        if (p.terminal() && console == null) {
            throw new RuntimeError("process.terminal is true: give --console-socket to receive the terminal");
        }
        if (!p.terminal() && console != null) {
            throw new RuntimeError(
                    "--console-socket given but process.terminal is false: there is no terminal to send");
        }
    }

    /**
     * Copies the file binds (hosts, resolv.conf, hostname) in. The guest kernel's hostname stays
     * the sandbox's name: the daemon keeps a guest's identity to itself (docs/oci-runtime.md).
     */
    private static void prepareGuest(SandboxService service, String sandbox, BundleConfig config, String root)
            throws IOException {
        if (config.files().isEmpty()) {
            return;
        }
        try (SandboxSession s = service.session(sandbox)) {
            for (Map.Entry<String, Path> f : config.files().entrySet()) {
                try (InputStream in = Files.newInputStream(f.getValue())) {
                    s.channel().writeFile(root + f.getKey(), in, 0644, true);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeError("interrupted while preparing the guest", e);
        }
    }

    private int start(Args a) {
        String id = containerId(a);
        noMore(a);
        Path dir = containerDir(id);
        ContainerRecord.read(dir, id);
        if (Files.exists(dir.resolve(ContainerRecord.STARTED))) {
            throw new RuntimeError("cannot start a container that has already started: " + id);
        }
        startContainer(dir, id);
        poststart(dir, id);
        return 0;
    }

    /**
     * Releases the stand-in: it holds the start FIFO open for writing and runs the process once
     * someone opens it for reading. Opening blocks until the stand-in is there, so it runs on a
     * thread with a limit, and fails at once if the stand-in is gone.
     */
    private static void startContainer(Path dir, String id) {
        ContainerRecord record = ContainerRecord.read(dir, id);
        if (ProcessExit.hasExited(record.pid())) {
            throw new RuntimeError("container " + id + " is stopped: its process is gone");
        }
        Path fifo = dir.resolve(ContainerRecord.START_FIFO);
        FutureTask<Void> open = new FutureTask<>(() -> {
            try (FileInputStream in = new FileInputStream(fifo.toFile())) {
                in.readAllBytes();
            }
            return null;
        });
        Thread.ofVirtual().start(open);
        try {
            open.get(START_WAIT.toMillis(), TimeUnit.MILLISECONDS);
            Files.writeString(
                    dir.resolve(ContainerRecord.STARTED), Instant.now().toString());
        } catch (TimeoutException e) {
            throw new RuntimeError("container " + id + " did not start within " + START_WAIT.toSeconds() + " s");
        } catch (ExecutionException | IOException e) {
            throw new RuntimeError("cannot start container " + id + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeError("interrupted while starting container " + id, e);
        }
    }

    // ---- state / kill / delete -----------------------------------------------------------------

    private int state(Args a) {
        String id = containerId(a);
        noMore(a);
        Path dir = containerDir(id);
        ContainerRecord r = ContainerRecord.read(dir, id);
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("ociVersion", SPEC_VERSION);
        s.put("id", id);
        String status = status(dir, r);
        s.put("status", status);
        s.put("pid", status.equals("stopped") ? 0 : r.pid());
        s.put("bundle", r.bundle());
        s.put("rootfs", Path.of(r.bundle()).resolve("rootfs").toString());
        s.put("created", r.created());
        s.put("owner", "");
        s.put("annotations", r.annotations());
        out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(s));
        return 0;
    }

    private static String status(Path dir, ContainerRecord r) {
        if (r.pid() <= 0 || ProcessExit.hasExited(r.pid()) || !StandIn.owns(r.pid(), dir)) {
            return "stopped";
        }
        if (!Files.exists(dir.resolve(ContainerRecord.STARTED))) {
            return "created";
        }
        return Files.exists(dir.resolve(PAUSED)) ? "paused" : "running";
    }

    private int kill(Args a) {
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            if (!Args.name(flag).equals("--all") && !flag.equals("-a")) {
                throw new RuntimeError("unknown option " + flag + " for kill");
            }
            // --all: every process of the container is in its VM, and the signal goes to the
            // process group there; SIGKILL ends the VM itself.
        }
        String id = containerId(a);
        int sig = a.more() ? Signals.parse(a.next()) : 15;
        noMore(a);
        Path dir = containerDir(id);
        ContainerRecord r = ContainerRecord.read(dir, id);
        if (status(dir, r).equals("stopped")) {
            throw new RuntimeError("container not running");
        }
        signal(r.pid(), sig);
        // an app container of a pod: its stand-in's end ends its process in the pod's VM; the VM stays
        if (sig == 9 && r.pod() == null) {
            // The stand-in is gone at once (conmon sees 137); the VM with it.
            SandboxService service = service();
            try {
                service.kill(r.sandbox());
            } catch (SandboxException e) {
                info("container " + id + ": " + e.getMessage());
            }
        }
        return 0;
    }

    private int delete(Args a) {
        boolean force = false;
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            if (Args.name(flag).equals("--force") || flag.equals("-f")) {
                force = true;
            } else {
                throw new RuntimeError("unknown option " + flag + " for delete");
            }
        }
        String id = containerId(a);
        noMore(a);
        Path dir = containerDir(id);
        if (!Files.isDirectory(dir)) {
            throw new RuntimeError("container \"" + id + "\" does not exist");
        }
        ContainerRecord r = Files.exists(dir.resolve(ContainerRecord.FILE)) ? ContainerRecord.read(dir, id) : null;
        if (r != null) {
            String status = status(dir, r);
            if ((status.equals("running") || status.equals("paused")) && !force) {
                throw new RuntimeError("cannot delete container " + id + " that is not stopped: " + status);
            }
            if (r.pod() == null) {
                endPodMembers(id, force);
            }
            if (!status.equals("stopped")) {
                signal(r.pid(), 9);
                ProcessExit.await(r.pid(), Duration.ofSeconds(5));
            }
            if (r.pod() == null) {
                removeQuietly(service(), r.sandbox());
            }
        } else {
            // A create that died before it wrote its record: its sandbox may exist.
            removeQuietly(service(), sandboxName(id));
        }
        // after the VM, which held files under them
        VmPod.leave(dir);
        VmPod.releaseShare(dir);
        DirectoryBinds.unmount(dir);
        if (r != null) {
            try {
                Hooks.run("poststop", hooks(dir).poststop(), stateJson(r, "stopped", 0), Path.of(r.bundle()));
            } catch (RuntimeError e) {
                warn(String.valueOf(e.getMessage())); // logged, not the delete's failure (runtime-spec)
            }
        }
        HostFiles.deleteTree(dir);
        return 0;
    }

    /**
     * Before a pod's sandbox container and VM go: its app containers. Running ones are refused
     * without {@code --force} (containerd's CRI stops and deletes them first); with it they are
     * killed, as their VM is about to be (Kata's way). Their roots leave the pod's share; their
     * state stays for their own delete, which then finds them stopped.
     */
    private void endPodMembers(String id, boolean force) {
        List<Path> members = VmPod.members(root, id);
        List<String> running = new ArrayList<>();
        for (Path m : members) {
            ContainerRecord mr = ContainerRecord.read(m, m.getFileName().toString());
            if (!status(m, mr).equals("stopped")) {
                running.add(mr.id());
            }
        }
        if (!running.isEmpty() && !force) {
            throw new RuntimeError("cannot delete container " + id + ": it is the sandbox container of a pod whose"
                    + " app containers " + String.join(", ", running) + " still run in its VM; delete them first,"
                    + " or delete --force, which kills them");
        }
        for (Path m : members) {
            ContainerRecord mr = ContainerRecord.read(m, m.getFileName().toString());
            if (!status(m, mr).equals("stopped")) {
                signal(mr.pid(), 9);
                ProcessExit.await(mr.pid(), Duration.ofSeconds(5));
            }
            VmPod.leave(m);
        }
    }

    // ---- exec / features -----------------------------------------------------------------------

    private int exec(Args a) {
        Path processFile = null;
        Path pidFile = null;
        Path console = null;
        boolean detach = false;
        boolean tty = false;
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            switch (Args.name(flag)) {
                case "--process", "-p" -> processFile = Path.of(a.value(flag));
                case "--pid-file" -> pidFile = Path.of(a.value(flag));
                case "--detach", "-d" -> detach = true;
                case "--tty", "-t" -> tty = true;
                case "--console-socket" -> console = Path.of(a.value(flag));
                case "--preserve-fds" -> {
                    if (!a.value(flag).equals("0")) {
                        throw new RuntimeError("--preserve-fds is not supported");
                    }
                }
                default ->
                    throw new RuntimeError("unknown option " + flag + " for exec (give the process with --process)");
            }
        }
        String id = containerId(a);
        noMore(a);
        if (processFile == null) {
            throw new RuntimeError("exec needs --process FILE (a runtime-spec process object)");
        }
        Path dir = containerDir(id);
        ContainerRecord r = ContainerRecord.read(dir, id);
        if (!status(dir, r).equals("running")) {
            throw new RuntimeError("cannot exec in a stopped container");
        }
        ProcessSpec p;
        try {
            // the container's seccomp filter and hostname hold for its execs too, as under runc
            ProcessSpec container =
                    Json.MAPPER.readValue(Files.readString(dir.resolve(ContainerRecord.PROCESS)), ProcessSpec.class);
            ProcessConfinement confined = container.confinement();
            p = BundleConfig.process(
                    Json.MAPPER.readTree(Files.readString(processFile)),
                    "",
                    new ArrayList<>(),
                    confined == null ? null : confined.seccomp(),
                    confined == null ? null : confined.hostname(),
                    // runc's exec enters the container's mount namespace: the agent joins the one it made
                    confined == null ? null : confined.mounts());
        } catch (IOException e) {
            throw new RuntimeError("cannot read the process file " + processFile + ": " + e.getMessage(), e);
        }
        if (tty && !p.terminal()) {
            p = p.withTerminal();
        }
        checkTerminal(p, console);
        Path execDir = dir.resolve("exec-" + Long.toHexString(System.nanoTime()));
        try {
            Files.createDirectory(execDir);
        } catch (IOException e) {
            throw new RuntimeError("cannot prepare the exec: " + e.getMessage(), e);
        }
        try {
            StandIn.writeRequest(execDir, p, r.podRoot());
        } catch (RuntimeError e) {
            HostFiles.deleteTree(execDir);
            throw e;
        }
        Path terminal = console == null ? null : ConsolePty.open(console);
        if (detach) {
            // the stand-in records its pid itself (ps lists it)
            long pid = StandIn.spawnDetached(execDir, r.sandbox(), terminal);
            if (pidFile != null) {
                writePidFile(pidFile, pid);
            }
            return 0;
        }
        StandIn.Handle h = StandIn.spawn(execDir, r.sandbox(), false, terminal);
        try {
            // ps lists it
            Files.writeString(execDir.resolve(StandIn.PID), Long.toString(h.pid()));
        } catch (IOException e) {
            signal(h.pid(), 9);
            throw new RuntimeError("cannot record the exec's process: " + e.getMessage(), e);
        }
        if (pidFile != null) {
            writePidFile(pidFile, h.pid());
        }
        return StandIn.awaitExit(h);
    }

    private int features() {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("ociVersionMin", "1.0.0");
        f.put("ociVersionMax", SPEC_VERSION);
        f.put("hooks", List.of());
        f.put("mountOptions", List.of("bind", "rbind", "rprivate", "nosuid", "noexec", "nodev"));
        f.put(
                "linux",
                Map.of(
                        "namespaces", List.of("pid", "network", "ipc", "uts", "mount", "cgroup"),
                        "capabilities", List.of(),
                        "cgroup", Map.of("v1", false, "v2", false, "systemd", false),
                        "seccomp", Map.of("enabled", false),
                        "apparmor", Map.of("enabled", false),
                        "selinux", Map.of("enabled", false)));
        f.put(
                "annotations",
                Map.of(
                        "run.airlock.runtime", "microvm",
                        "run.airlock.isolation", "each container is its own microVM (QEMU microvm)"));
        out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(f));
        return 0;
    }

    // ---- ps / pause / resume / update / spec ---------------------------------------------------

    /**
     * The host processes of a container: its stand-in and those of its live execs, the pids its
     * caller knows (the processes themselves run in the sandbox, under its own kernel in a VM).
     */
    private int ps(Args a) {
        String format = "table";
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            if (Args.name(flag).equals("--format") || flag.equals("-f")) {
                format = a.value(flag);
            } else {
                throw new RuntimeError("unknown option " + flag + " for ps");
            }
        }
        String id = containerId(a);
        noMore(a);
        Path dir = containerDir(id);
        ContainerRecord r = ContainerRecord.read(dir, id);
        if (status(dir, r).equals("stopped")) {
            throw new RuntimeError("container " + id + " is not running");
        }
        List<Long> pids = new ArrayList<>(List.of(r.pid()));
        try (var execs = Files.newDirectoryStream(dir, "exec-*")) {
            for (Path e : execs) {
                try {
                    long pid = Long.parseLong(
                            Files.readString(e.resolve(StandIn.PID)).strip());
                    if (!ProcessExit.hasExited(pid) && StandIn.owns(pid, e)) {
                        pids.add(pid);
                    }
                } catch (IOException | NumberFormatException ignored) {
                    // an exec being set up or gone
                }
            }
        } catch (IOException e) {
            throw new RuntimeError("cannot list the processes of container " + id + ": " + e.getMessage(), e);
        }
        switch (format) {
            case "json" -> out.println(Json.MAPPER.writeValueAsString(pids));
            case "table" -> {
                out.println("PID\tCMD");
                for (long pid : pids) {
                    out.println(pid + "\t"
                            + ProcessHandle.of(pid)
                                    .flatMap(p -> p.info().commandLine())
                                    .orElse("?"));
                }
            }
            default -> throw new RuntimeError("ps --format " + format + ": use table or json");
        }
        return 0;
    }

    /**
     * runc freezes the container's cgroup; here the guest freezes the cgroup every command of
     * the sandbox runs in (the agent's {@code cgroup} built-in). The VM itself keeps running, so
     * the stand-ins' sessions and the container's stdio stay open across the pause, as under runc.
     */
    private int pause(Args a, boolean freeze) {
        String id = containerId(a);
        noMore(a);
        Path dir = containerDir(id);
        ContainerRecord r = ContainerRecord.read(dir, id);
        String status = status(dir, r);
        if (!status.equals(freeze ? "running" : "paused")) {
            throw new RuntimeError("container " + id + " is " + status + ", not " + (freeze ? "running" : "paused"));
        }
        requireMicrovm(r, freeze ? "pause" : "resume");
        guestCgroup(r.sandbox(), "cgroup.freeze", freeze ? "1" : "0");
        try {
            if (freeze) {
                Files.writeString(dir.resolve(PAUSED), Instant.now().toString());
            } else {
                Files.deleteIfExists(dir.resolve(PAUSED));
            }
        } catch (IOException e) {
            throw new RuntimeError("cannot record the pause of container " + id + ": " + e.getMessage(), e);
        }
        return 0;
    }

    /**
     * {@code update}: the limits a running VM can change, set on the guest's command cgroup
     * (memory up to the VM's RAM, the process limit); the rest is refused in words. The
     * resources come as runtime-spec {@code linux.resources} JSON ({@code --resources FILE}, or
     * {@code -} for stdin as containerd's shim sends them) or as runc's flags.
     */
    private int update(Args a) {
        Long memory = null;
        Long pids = null;
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            switch (Args.name(flag)) {
                case "--resources", "-r" -> {
                    String from = a.value(flag);
                    ResourceUpdate u = ResourceUpdate.parse(readResources(from));
                    memory = u.memory() != null ? u.memory() : memory;
                    pids = u.pids() != null ? u.pids() : pids;
                }
                case "--memory", "-m" -> memory = ResourceUpdate.bytes(a.value(flag));
                case "--pids-limit" -> pids = ResourceUpdate.number("--pids-limit", a.value(flag));
                default ->
                    throw new RuntimeError("update " + flag + ": a microVM can change only its memory limit"
                            + " (--memory, up to the RAM it booted with) and its process limit (--pids-limit)"
                            + " while it runs");
            }
        }
        String id = containerId(a);
        noMore(a);
        Path dir = containerDir(id);
        ContainerRecord r = ContainerRecord.read(dir, id);
        if (status(dir, r).equals("stopped")) {
            throw new RuntimeError("container " + id + " is not running");
        }
        requireMicrovm(r, "update");
        if (memory != null) {
            long ram = (long) service().inspect(r.sandbox()).resources().memoryMiB() << 20;
            if (memory > ram) {
                throw new RuntimeError("update memory " + memory + " bytes: the VM booted with " + (ram >> 20)
                        + " MiB and cannot grow while it runs; recreate the container with the larger limit");
            }
            guestCgroup(r.sandbox(), "memory.max", memory < 0 ? "max" : Long.toString(memory));
        }
        if (pids != null) {
            guestCgroup(r.sandbox(), "pids.max", pids <= 0 ? "max" : Long.toString(pids));
        }
        return 0;
    }

    private static String readResources(String from) {
        try {
            if (from.equals("-")) {
                return new String(System.in.readNBytes(1 << 20), StandardCharsets.UTF_8);
            }
            return Files.readString(Path.of(from));
        } catch (IOException e) {
            throw new RuntimeError("cannot read the resources " + from + ": " + e.getMessage(), e);
        }
    }

    private static void requireMicrovm(ContainerRecord r, String what) {
        if (r.pod() != null) {
            throw new RuntimeError(what + " of an app container in a pod's VM is not supported yet: the pod's"
                    + " containers share the VM's one command cgroup; " + what + " the pod's sandbox container "
                    + r.pod() + " (all of the pod)");
        }
        String mode = r.annotations().getOrDefault(BundleConfig.MODE_ANNOTATION, "microvm");
        if (!mode.equals("microvm")) {
            throw new RuntimeError(what + " is supported for microvm-mode containers only so far; container " + r.id()
                    + " runs in " + mode + " mode");
        }
    }

    /** Writes one file of the guest's command cgroup through the agent's {@code cgroup} built-in. */
    private static void guestCgroup(String sandbox, String file, String value) {
        try (SandboxSession s = service().session(sandbox)) {
            java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
            dev.airlock.guest.ExitStatus st = s.channel()
                    .exec(
                            dev.airlock.guest.ExecSpec.builder(List.of("cgroup", file, value))
                                    .builtin(true)
                                    .timeout(GUEST_STEP)
                                    .build(),
                            java.io.OutputStream.nullOutputStream(),
                            err)
                    .await();
            if (st.shellStatus() != 0) {
                throw new RuntimeError(
                        "the guest could not set " + file + " to " + value + " (status " + st.shellStatus() + "): "
                                + err.toString(StandardCharsets.UTF_8).strip());
            }
        } catch (IOException e) {
            throw new RuntimeError("cannot reach the guest of sandbox " + sandbox + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeError("interrupted while setting " + file, e);
        }
    }

    /**
     * {@code spec}: writes a default config.json into the bundle directory, as runc's does, with
     * two changes so that it runs here as written: the root is writable (a read-only 9p root is
     * not supported yet) and there is no terminal (runc's {@code run} takes the caller's; this
     * runtime needs {@code --console-socket} for one).
     */
    private int spec(Args a) {
        Path bundle = Path.of(".");
        while (a.more() && a.peek().startsWith("-")) {
            String flag = a.next();
            switch (Args.name(flag)) {
                case "--bundle", "-b" -> bundle = Path.of(a.value(flag));
                case "--rootless" ->
                    throw new RuntimeError(
                            "spec --rootless: a sandbox needs no user namespace mappings;" + " use the default spec");
                default -> throw new RuntimeError("unknown option " + flag + " for spec");
            }
        }
        Path file = bundle.resolve("config.json");
        if (Files.exists(file)) {
            throw new RuntimeError("File " + file + " exists. Remove it first");
        }
        try {
            Files.writeString(
                    file,
                    Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(DefaultSpec.config()),
                    StandardOpenOption.CREATE_NEW);
        } catch (IOException e) {
            throw new RuntimeError("cannot write " + file + ": " + e.getMessage(), e);
        }
        return 0;
    }

    // ---- helpers -------------------------------------------------------------------------------

    private static String containerId(Args a) {
        if (!a.more()) {
            throw new RuntimeError("no container id given");
        }
        String id = a.next();
        if (!ID.matcher(id).matches()) {
            throw new RuntimeError("invalid container id '" + id + "': use letters, digits, '_', '+', '-', '.'");
        }
        return id;
    }

    /**
     * Refuses words after a command's last argument, as runc does: options after the id were once
     * ignored, so {@code create ID --bundle DIR} made the container from the current directory.
     */
    private static void noMore(Args a) {
        if (a.more()) {
            throw new RuntimeError("unexpected '" + a.peek() + "' after the container id: options go before the id"
                    + " (e.g. create --bundle DIR ID)\n" + usage());
        }
    }

    /** The sandbox of a container: Airlock names are at most 63 characters. */
    static String sandboxName(String id) {
        String n = "oci-" + id.replaceAll("[^a-zA-Z0-9_.-]", "-");
        return n.length() > 63 ? n.substring(0, 63) : n;
    }

    private Path ensureRoot() {
        try {
            Files.createDirectories(root);
            // Other local users must not read or plant container state: private to its owner.
            Files.setPosixFilePermissions(root, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        } catch (IOException e) {
            throw new RuntimeError("cannot create the state root " + root + ": " + e.getMessage(), e);
        }
        return root;
    }

    private Path containerDir(String id) {
        return root.resolve(id);
    }

    private static SandboxService service() {
        return DaemonClient.connect(AirlockDirs.fromEnvironment());
    }

    private static void removeQuietly(SandboxService service, String sandbox) {
        try {
            service.remove(sandbox, true);
        } catch (SandboxException e) {
            if (e.kind() != SandboxException.Kind.NOT_FOUND) {
                throw e;
            }
        }
    }

    static void signal(long pid, int sig) {
        HostCommand.Result r = HostCommand.run(List.of("kill", "-" + sig, Long.toString(pid)), null, null);
        if (!r.ok() && !ProcessExit.hasExited(pid)) {
            throw new RuntimeError(
                    "cannot signal process " + pid + ": " + r.output().strip());
        }
    }

    private static void writePidFile(Path pidFile, long pid) {
        try {
            Path tmp = pidFile.resolveSibling(pidFile.getFileName() + ".tmp");
            Files.writeString(tmp, Long.toString(pid), StandardCharsets.US_ASCII);
            Files.move(tmp, pidFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new RuntimeError("cannot write the pid file " + pidFile + ": " + e.getMessage(), e);
        }
    }

    private void error(String message) {
        System.err.println("airlock-runtime: " + message);
        logLine("error", message);
    }

    private void info(String message) {
        logLine("info", message);
    }

    /** Said on stderr and logged, but not a failure of the command. */
    private void warn(String message) {
        System.err.println("airlock-runtime: warning: " + message);
        logLine("warning", message);
    }

    private void logLine(String level, String message) {
        Path l = log;
        if (l == null) {
            return;
        }
        String line = jsonLog
                ? Json.MAPPER.writeValueAsString(Map.of(
                        "level", level, "msg", message, "time", Instant.now().toString()))
                : Instant.now() + " " + level + " " + message;
        try {
            Files.writeString(l, line + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.err.println("airlock-runtime: cannot write the log " + l + ": " + e.getMessage());
        }
    }

    /** The command line, read left to right; {@code --flag=value} and {@code --flag value} both work. */
    static final class Args {
        private final List<String> items;
        private int at;
        private @Nullable String pendingValue;

        Args(List<String> items) {
            this.items = items;
        }

        boolean more() {
            return at < items.size();
        }

        String peek() {
            return items.get(at);
        }

        String next() {
            String s = items.get(at++);
            int eq = s.indexOf('=');
            if (s.startsWith("-") && eq > 0) {
                pendingValue = s.substring(eq + 1);
                return s.substring(0, eq);
            }
            pendingValue = null;
            return s;
        }

        static String name(String flag) {
            // runc (urfave/cli) accepts -flag as well as --flag
            return flag.startsWith("--") || flag.length() == 2 ? flag : "-" + flag;
        }

        String value(String flag) {
            String v = pendingValue;
            if (v != null) {
                pendingValue = null;
                return v;
            }
            if (!more()) {
                throw new RuntimeError(flag + " needs a value");
            }
            return items.get(at++);
        }
    }
}
