package dev.airlock.cli;

import dev.airlock.client.DaemonClient;
import dev.airlock.guest.CommandNotExecutableException;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.image.ImageStore;
import dev.airlock.runtimes.HostRuntimes;
import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxStats;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ForkSpec;
import dev.airlock.service.LogKind;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import dev.airlock.service.SandboxSession;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The sandbox lifecycle commands, named and flagged as Docker and Podman users expect. */
final class SandboxCommands {
    private SandboxCommands() {}

    /** The sandbox service every command uses: this data directory's daemon, started on demand. */
    static SandboxService client() {
        return DaemonClient.connect(dirs());
    }

    /** Applies one lifecycle call to each named sandbox and prints each name, as docker does. */
    static int each(List<String> names, java.util.function.BiFunction<SandboxService, String, SandboxInfo> call) {
        SandboxService client = client();
        for (String n : names) {
            System.out.println(call.apply(client, n).name());
        }
        return 0;
    }

    static AirlockDirs dirs() {
        return AirlockDirs.fromEnvironment();
    }

    /**
     * Builds what a new sandbox needs (base image, its runtime's assets such as a microVM's
     * kernel, a built-in image on first use) here, in the CLI, so the user sees the progress of
     * that long work on their terminal. {@code runtime} null: the host's default runtime.
     */
    static void preflight(@Nullable String runtime, @Nullable String image) {
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        ImageStore images = new ImageStore(dirs);
        new HostRuntimes(dirs, Progress.STDERR).prepare(runtime, false);
        if (image != null) {
            images.require(image, Progress.STDERR);
        }
    }

    /** Options shared by create and run. */
    static final class CreateFlags {
        @Option(names = "--name", description = "Name of the sandbox (default: a random two-word name).")
        @Nullable
        String name;

        @Option(names = "--image", description = "Image to boot (default: airlock.toml's, else base).")
        @Nullable
        String image;

        @Option(
                names = "--entrypoint",
                paramLabel = "PROGRAM",
                description = "Replaces the image's entrypoint (and its cmd): the sandbox's command becomes PROGRAM"
                        + " followed by the command's arguments; '' clears it, as Docker's does.")
        @Nullable
        String entrypoint;

        /** The sandbox's default user ({@code run -u}, {@code create -u}); not an option of its own here. */
        @Nullable
        String user;

        /** The arguments after the entrypoint, replacing the image's cmd (Docker's {@code run IMAGE ARGS}). */
        @Nullable
        List<String> cmd;

        @Option(names = "--cpus", description = "vCPUs (default: 1).")
        @Nullable
        Integer cpus;

        @Option(
                names = {"-m", "--memory"},
                description = "Memory, e.g. 512m or 2g (default: 512m).")
        @Nullable
        String memory;

        @Option(names = "--disk", description = "Size of the writable disk, e.g. 4g (default: 4g).")
        @Nullable
        String disk;

        @Option(names = "--pids-limit", defaultValue = "4096", description = "Maximum number of processes.")
        int pids = 4096;

        @Option(
                names = {"-e", "--env"},
                description = "Environment variable NAME=VALUE for every command.")
        List<String> env = new ArrayList<>();

        @Option(
                names = {"-w", "--workdir"},
                description = "Working directory for commands.")
        @Nullable
        String workdir;

        @Option(names = "--accel", description = "kvm or tcg (default: what airlock doctor decided).")
        @Nullable
        String accel;

        @Option(
                names = "--runtime",
                defaultValue = "${env:AIRLOCK_RUNTIME}",
                description = "microvm, gvisor or container (default: AIRLOCK_RUNTIME, else airlock.toml's, else"
                        + " what this host isolates best: see airlock doctor).")
        @Nullable
        String runtime;

        @Option(names = "--lifetime", description = "Stop the sandbox after this long, e.g. 30m (default: never).")
        @Nullable
        String lifetime;

        @Option(
                names = "--network",
                paramLabel = "MODE",
                description = "none (default: no network at all), proxy (HTTP(S) through the host's egress"
                        + " policy) or nat (a NIC with user-mode NAT, raw TCP/UDP, filtered by IP on the host).")
        @Nullable
        String network;

        @Option(
                names = "--allow-host",
                paramLabel = "HOST",
                description = "Allow egress to HOST (repeatable; *.example.com for subdomains, * for any;"
                        + " with --network nat: names, IPs or *). Implies --network proxy.")
        List<String> allowHosts = new ArrayList<>();

        @Option(
                names = "--add-host",
                paramLabel = "NAME:IP",
                description = "Pin NAME to IP for egress (repeatable); the name must still be allowed.")
        List<String> addHosts = new ArrayList<>();

        @Option(
                names = {"-p", "--publish"},
                paramLabel = "[HOSTIP:]HOSTPORT:GUESTPORT",
                description = "Forward a host port (127.0.0.1 unless HOSTIP) to a port in the sandbox (repeatable).")
        List<String> publish = new ArrayList<>();

        @Option(
                names = "--no-host-ca",
                description = "Do not add the CAs this host trusts beyond the public ones (its"
                        + " /usr/local/share/ca-certificates, SSL_CERT_FILE, ...) to the sandbox's trust store.")
        boolean noHostCa;

        @Option(
                names = "--secret",
                paramLabel = "NAME[@HOST,...]",
                description = "Give the sandbox a placeholder for host variable NAME; the egress proxy puts the"
                        + " real value into request headers for HOST (any allowed host if none). Repeatable.")
        List<String> secrets = new ArrayList<>();

        @Option(
                names = "--secret-file",
                paramLabel = "NAME=FILE[@HOST,...]",
                description = "As --secret, with the value read from FILE (trailing newline dropped).")
        List<String> secretFiles = new ArrayList<>();

        @Option(
                names = "--inference",
                paramLabel = "URL",
                description = "Give the sandbox an OpenAI-compatible endpoint (OPENAI_BASE_URL) that the host"
                        + " forwards to URL, e.g. http://127.0.0.1:8080/v1.")
        @Nullable
        String inference;

        @Option(
                names = "--inference-key-env",
                paramLabel = "VAR",
                description = "Host variable with the upstream's API key (default OPENAI_API_KEY; kept on the host).")
        @Nullable
        String inferenceKeyEnv;

        @Option(
                names = "--inference-requests",
                paramLabel = "N",
                description = "At most N inference requests per minute (token bucket; default: no limit).")
        long inferenceRequests;

        @Option(
                names = "--inference-bytes",
                paramLabel = "SIZE",
                description = "At most SIZE bytes of request and response bodies per minute, e.g. 10m.")
        @Nullable
        String inferenceBytes;

        dev.airlock.net.@Nullable InferenceConfig inferenceConfig() {
            if (inference == null) {
                if (inferenceKeyEnv != null || inferenceRequests != 0 || inferenceBytes != null) {
                    throw new SandboxException("--inference-* options need --inference URL");
                }
                return null;
            }
            String var = inferenceKeyEnv != null ? inferenceKeyEnv : "OPENAI_API_KEY";
            String key = System.getenv(var);
            if (key == null && inferenceKeyEnv != null) {
                throw new SandboxException("--inference-key-env " + var + ": the host variable is not set");
            }
            long bytes = inferenceBytes == null ? 0 : Resources.parseMiB(inferenceBytes) << 20;
            return new dev.airlock.net.InferenceConfig(inference, key != null ? key : "", inferenceRequests, bytes);
        }

        List<dev.airlock.net.Secret> secretList() {
            List<dev.airlock.net.Secret> out = new ArrayList<>();
            for (String s : secrets) {
                out.add(dev.airlock.net.Secret.fromEnv(s, System::getenv));
            }
            for (String s : secretFiles) {
                int eq = s.indexOf('=');
                if (eq <= 0) {
                    throw new SandboxException("--secret-file '" + s + "' is not NAME=FILE[@HOST,...]");
                }
                String rest = s.substring(eq + 1);
                int at = rest.lastIndexOf('@');
                Path file = Path.of(at < 0 ? rest : rest.substring(0, at));
                String value;
                try {
                    value = java.nio.file.Files.readString(file).stripTrailing();
                } catch (IOException e) {
                    throw new SandboxException("--secret-file " + s.substring(0, eq) + ": cannot read " + file);
                }
                out.add(dev.airlock.net.Secret.create(s.substring(0, eq), value, at < 0 ? "" : rest.substring(at + 1)));
            }
            return out;
        }

        /**
         * What the flags ask for; the service fills in the rest (airlock.toml's defaults for a
         * workspace, then Airlock's), so every front end gets the same sandbox.
         */
        CreateSpec toSpec() {
            Long seconds =
                    lifetime == null ? null : Resources.parseDuration(lifetime).toSeconds();
            List<dev.airlock.net.Secret> secretValues = secretList();
            return CreateSpec.builder()
                    .name(name)
                    .image(image)
                    .runtime(runtime)
                    .cpus(cpus)
                    .memoryMiB(memory == null ? null : Math.toIntExact(Resources.parseMiB(memory)))
                    .diskMiB(disk == null ? null : Resources.parseMiB(disk))
                    .pids(pids)
                    .lifetimeSeconds(seconds)
                    .env(parseEnv(env))
                    .workdir(workdir)
                    .accel(accel)
                    .network(network)
                    .allowHosts(allowHosts)
                    .addHosts(addHosts)
                    .publish(publish)
                    .secrets(secretValues)
                    .inference(inferenceConfig())
                    .hostCa(noHostCa ? Boolean.FALSE : null)
                    .user(user)
                    // Docker's --entrypoint '' clears the image's entrypoint: the arguments alone are the command
                    .entrypoint(entrypoint == null ? null : entrypoint.isEmpty() ? List.of() : List.of(entrypoint))
                    .cmd(cmd)
                    .build();
        }
    }

    /** Options that put a copy of a git repository in the sandbox. */
    static final class WorkspaceFlags {
        @Option(names = "--workspace", paramLabel = "DIR", description = "Copy this git repository into /workspace.")
        @Nullable
        Path dir;

        @Option(names = "--uncommitted", description = "Bring the repository's uncommitted changes too.")
        boolean uncommitted;

        @Option(
                names = "--agent",
                arity = "0..1",
                fallbackValue = "",
                paramLabel = "CMD",
                description = "Run an agent in the workspace: a preset (claude, codex, gemini, opencode: airlock"
                        + " agent ls), a command line CMD, or airlock.toml's [agent].")
        @Nullable
        String agent;

        @Option(
                names = "--task",
                paramLabel = "TEXT",
                description = "The agent's task, given to it as $AIRLOCK_TASK (a preset's command line reads it).")
        @Nullable
        String task;

        @Option(names = "--task-file", paramLabel = "FILE", description = "As --task, read from FILE.")
        @Nullable
        Path taskFile;

        @Option(names = "--agent-env", paramLabel = "NAME", description = "Pass host variable NAME to the agent.")
        List<String> agentEnv = new ArrayList<>();

        @Option(names = "--agent-env-file", paramLabel = "FILE", description = "Pass NAME=VALUE lines to the agent.")
        @Nullable
        Path agentEnvFile;
    }

    /** Options shared by run and exec: how one command runs. */
    static final class ExecFlags {
        @Option(
                names = {"-i", "--interactive"},
                description = "Keep stdin open and stream it to the command.")
        boolean interactive;

        @Option(
                names = {"-t", "--tty"},
                description = "Run the command on a pseudo-terminal.")
        boolean tty;

        @Option(
                names = {"-u", "--user"},
                description = "User name or uid[:gid] in the sandbox.")
        @Nullable
        String user;

        @Option(names = "--timeout", description = "Kill the command after this long, e.g. 30s or 5m.")
        @Nullable
        String timeout;
    }

    static Map<String, String> parseEnv(List<String> env) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String e : env) {
            int eq = e.indexOf('=');
            if (eq <= 0) {
                String fromHost = System.getenv(e);
                if (eq == 0 || fromHost == null) {
                    throw new SandboxException(
                            "invalid --env '" + e + "': use NAME=VALUE (or NAME to pass a host variable that is set)");
                }
                out.put(e, fromHost);
            } else {
                out.put(e.substring(0, eq), e.substring(eq + 1));
            }
        }
        return out;
    }

    /** Runs one command over a fresh agent session and returns the shell-style exit status. */
    static int execute(
            SandboxService client,
            String sandbox,
            List<String> command,
            ExecFlags flags,
            Map<String, String> env,
            @Nullable String workdir)
            throws IOException, InterruptedException {
        if (command.isEmpty()) {
            throw new SandboxException("no command given; put it after --, e.g. airlock exec " + sandbox + " -- ls -l");
        }
        // The sandbox's own environment and working directory are the agent's defaults (the
        // service sets them): only what this command adds goes here.
        ExecSpec.Builder spec =
                ExecSpec.builder(command).env(env).cwd(workdir).user(flags.user).stdin(flags.interactive);
        if (flags.timeout != null) {
            spec.timeout(Resources.parseDuration(flags.timeout));
        }
        OutputStream out = new FileOutputStream(FileDescriptor.out);
        OutputStream err = new FileOutputStream(FileDescriptor.err);
        try (SandboxSession session = client.session(sandbox)) {
            Terminal terminal = flags.tty ? Terminal.open() : null;
            if (terminal != null) {
                spec.tty(terminal.rows(), terminal.cols());
            }
            try {
                return run(session, spec, flags, terminal, out, err);
            } finally {
                if (terminal != null) {
                    terminal.close();
                }
            }
        }
    }

    private static int run(
            SandboxSession session,
            ExecSpec.Builder spec,
            ExecFlags flags,
            @Nullable Terminal terminal,
            OutputStream out,
            OutputStream err)
            throws IOException, InterruptedException {
        Execution ex;
        try {
            ex = session.channel().exec(spec.build(), out, err);
        } catch (CommandNotFoundException e) {
            System.err.println("airlock: " + e.getMessage());
            return 127;
        } catch (CommandNotExecutableException e) {
            System.err.println("airlock: " + e.getMessage());
            return 126;
        }
        if (terminal != null) {
            terminal.onResize((rows, cols) -> {
                try {
                    ex.resize(rows, cols);
                } catch (IOException | RuntimeException e) {
                    // The process may have exited between the signal and the resize.
                }
            });
        }
        if (flags.interactive) {
            Thread.ofVirtual().start(() -> pump(System.in, ex.stdin()));
        }
        ExitStatus st = ex.await();
        if (st.timedOut()) {
            System.err.println("airlock: the command timed out after " + flags.timeout + " and was killed");
        } else if (st.oomKilled()) {
            System.err.println(oomMessage(st, session.sandbox()));
        }
        return st.shellStatus();
    }

    /** What an OOM kill during a command means for the user, and what to change. */
    static String oomMessage(ExitStatus st, SandboxInfo s) {
        String what = st.signal() == 9
                ? "the command was killed by the out-of-memory killer"
                : "the out-of-memory killer killed a process while the command ran";
        return "airlock: " + what + " (sandbox memory limit " + s.resources().memoryMiB()
                + " MiB); give the sandbox more with --memory when creating it";
    }

    private static void pump(InputStream in, OutputStream stdin) {
        byte[] buf = new byte[32768];
        try (stdin) {
            for (int n; (n = in.read(buf)) > 0; ) {
                stdin.write(buf, 0, n);
                stdin.flush();
            }
        } catch (IOException | RuntimeException e) {
            // The command exited (or the session ended) while we were still feeding it.
        }
    }

    @Command(
            name = "run",
            description = "Create a sandbox, start it and run a command in it: run [OPTIONS] IMAGE [ARG...] (Docker's"
                    + " form: the image's entrypoint with ARGs, else its cmd), or run [OPTIONS] [--image IMAGE] --"
                    + " COMMAND... (the command as given). Without a command, the image's entrypoint and cmd.")
    static final class Run implements Callable<Integer> {
        @Mixin
        CreateFlags create = new CreateFlags();

        @Mixin
        ExecFlags exec = new ExecFlags();

        @Mixin
        WorkspaceFlags workspace = new WorkspaceFlags();

        @Option(names = "--rm", description = "Remove the sandbox (and its disk) when the command exits.")
        boolean rm;

        @Option(
                names = {"-d", "--detach"},
                description = "Start the sandbox and leave it running; no command.")
        boolean detach;

        @Parameters(
                paramLabel = "[IMAGE] ARG",
                description = "IMAGE and its arguments (Docker's form, when no --image is given and the first word"
                        + " comes before any --), or the command after --.")
        List<String> command = new ArrayList<>();

        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.@Nullable CommandSpec spec;

        /** How many of the positional words came before a {@code --} (all of them when there is none). */
        private int wordsBeforeDashes() {
            if (spec == null) {
                return 0;
            }
            List<String> original = spec.commandLine().getParseResult().originalArgs();
            int dashes = original.indexOf("--");
            return dashes < 0 ? command.size() : command.size() - (original.size() - dashes - 1);
        }

        @Override
        public Integer call() throws Exception {
            boolean agent = workspace.agent != null;
            List<String> args = command;
            // Docker's form: the first word is the image, the rest its arguments.
            boolean dockerForm = create.image == null && wordsBeforeDashes() > 0;
            if (dockerForm) {
                create.image = command.getFirst();
                args = command.subList(1, command.size());
            }
            if (detach && (!args.isEmpty() || agent)) {
                throw new SandboxException("run --detach starts a sandbox without a command; run commands in it with:"
                        + " airlock exec NAME -- CMD");
            }
            if (agent && !args.isEmpty()) {
                throw new SandboxException("give either --agent or a command, not both");
            }
            if (detach && rm) {
                throw new SandboxException("--rm and --detach together would remove the sandbox at once; use one");
            }
            if (exec.timeout != null) {
                Resources.parseDuration(exec.timeout);
            }
            // Arguments after an entrypoint (Docker's form, or --entrypoint) become the sandbox's command
            // with it; a command given after -- runs as given, as exec runs it.
            boolean throughEntrypoint = dockerForm || create.entrypoint != null;
            if (throughEntrypoint && !args.isEmpty()) {
                create.cmd = args;
            }
            // run -u is the sandbox's user, as docker run -u is the container's: later execs get it too.
            create.user = exec.user;
            WorkspaceFlow flow = WorkspaceFlow.plan(create, workspace);
            SandboxService client = client();
            SandboxInfo s = flow.hasWorkspace() ? flow.make(client, true) : client.create(flow.spec());
            boolean keep = detach;
            try {
                List<String> toRun =
                        agent ? flow.agentCommand() : throughEntrypoint || args.isEmpty() ? s.command() : args;
                if (!detach && toRun.isEmpty()) {
                    keep = true; // nothing ran: removed below, not stopped and kept
                    client.remove(s.id(), true);
                    throw new SandboxException("no command given, and "
                            + ("".equals(create.entrypoint)
                                    ? "--entrypoint '' cleared the image's"
                                    : "image '" + s.image() + "' names none (no entrypoint or cmd)")
                            + "; e.g. airlock run --rm -- uname -a (or run -d to just start a sandbox)");
                }
                if (!flow.hasWorkspace()) {
                    s = client.start(s.id());
                }
                if (detach) {
                    System.out.println(s.name());
                    return 0;
                }
                return execute(client, s.id(), toRun, exec, agent ? flow.agentEnv() : Map.of(), null);
            } finally {
                if (!keep) {
                    if (rm) {
                        client.remove(s.id(), true);
                    } else if (client.inspect(s.id()).running()) {
                        client.stop(s.id(), Duration.ofSeconds(10));
                        System.err.println("airlock: sandbox " + s.name() + " is stopped and kept"
                                + (flow.hasWorkspace() ? "; bring its work back with: airlock pull " + s.name() : "")
                                + "; remove it with: airlock rm " + s.name());
                    }
                }
            }
        }
    }

    @Command(name = "create", description = "Create a sandbox without starting it.")
    static final class Create implements Callable<Integer> {
        @Mixin
        CreateFlags create = new CreateFlags();

        @Option(
                names = {"-u", "--user"},
                description = "The user of commands that name none (default: the image's USER, else root).")
        @Nullable
        String user;

        @Mixin
        WorkspaceFlags workspace = new WorkspaceFlags();

        @Override
        public Integer call() throws Exception {
            if (workspace.agent != null) {
                throw new SandboxException("--agent runs with airlock run; create only prepares a sandbox");
            }
            create.user = user;
            WorkspaceFlow flow = WorkspaceFlow.plan(create, workspace);
            // A workspace is copied in now, while the repository is in the state the user sees.
            System.out.println(flow.make(client(), false).name());
            return 0;
        }
    }

    @Command(name = "start", description = "Start (boot) sandboxes.")
    static final class Start implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            return each(names, (client, n) -> client.start(n));
        }
    }

    @Command(name = "exec", description = "Run a command in a running sandbox.")
    static final class Exec implements Callable<Integer> {
        @Mixin
        ExecFlags exec = new ExecFlags();

        @Option(
                names = {"-e", "--env"},
                description = "Environment variable NAME=VALUE.")
        List<String> env = new ArrayList<>();

        @Option(
                names = {"-w", "--workdir"},
                description = "Working directory.")
        @Nullable
        String workdir;

        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1..*", paramLabel = "COMMAND")
        List<String> command = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            Map<String, String> vars = parseEnv(env);
            return execute(client(), name, command, exec, vars, workdir);
        }
    }

    @Command(name = "shell", description = "Open an interactive shell in a running sandbox.")
    static final class Shell implements Callable<Integer> {
        @Option(
                names = {"-u", "--user"},
                description = "User name or uid[:gid].")
        @Nullable
        String user;

        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Override
        public Integer call() throws Exception {
            ExecFlags flags = new ExecFlags();
            flags.interactive = true;
            flags.tty = Terminal.interactive();
            flags.user = user;
            return execute(client(), name, List.of("/bin/bash", "-l"), flags, Map.of(), null);
        }
    }

    @Command(name = "ps", aliases = "ls", description = "List sandboxes (running ones; -a for all).")
    static final class Ps implements Callable<Integer> {
        @Option(
                names = {"-a", "--all"},
                description = "Show stopped and failed sandboxes too.")
        boolean all;

        @Option(
                names = {"-q", "--quiet"},
                description = "Only names.")
        boolean quiet;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            List<SandboxInfo> list =
                    client().list().stream().filter(s -> all || s.running()).toList();
            if (json) {
                Output.json(list);
            } else {
                print(list, quiet);
            }
            return 0;
        }

        /** The table (or, quiet, the names) of {@code ps}; also the quick path's. */
        static void print(List<SandboxInfo> list, boolean quiet) {
            if (quiet) {
                list.forEach(s -> System.out.println(s.name()));
                return;
            }
            Output.table(
                    System.out,
                    List.of("NAME", "ID", "IMAGE", "STATE", "RUNTIME", "CPUS", "MEMORY", "CREATED"),
                    list.stream()
                            .map(s -> List.of(
                                    s.name(),
                                    s.shortId(),
                                    s.image(),
                                    s.state().label(),
                                    s.accel().equals("none") ? s.runtime() : s.runtime() + "/" + s.accel(),
                                    Integer.toString(s.resources().cpus()),
                                    s.resources().memoryMiB() + "m",
                                    ImageCommand.ago(s.created())))
                            .toList());
        }
    }

    @Command(name = "inspect", description = "Show a sandbox's full record as JSON.")
    static final class Inspect implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            SandboxService client = client();
            List<SandboxInfo> out = names.stream().map(client::inspect).toList();
            Output.json(out.size() == 1 ? out.getFirst() : out);
            return 0;
        }
    }

    @Command(name = "logs", description = "Print a sandbox's console (kernel and agent) log.")
    static final class Logs implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX")
        String name = "";

        @Option(names = "--egress", description = "Print the egress proxy's decisions instead.")
        boolean egress;

        @Option(
                names = "--raw",
                description = "Print the guest's bytes as they are (by default control characters and escape"
                        + " sequences are shown escaped, so a guest cannot drive your terminal).")
        boolean raw;

        @Override
        public Integer call() {
            String text = client().logs(name, egress ? LogKind.EGRESS : LogKind.CONSOLE, 4 << 20);
            // The console is the guest's output: anything in it may be an attack on a terminal.
            System.out.print(raw ? text : dev.airlock.net.UntrustedText.forTerminal(text));
            System.out.flush();
            return 0;
        }
    }

    @Command(name = "stop", description = "Power sandboxes off cleanly (killing them after the grace period).")
    static final class Stop implements Callable<Integer> {
        @Option(
                names = {"-t", "--time"},
                defaultValue = "10",
                description = "Seconds to wait before killing.")
        int seconds = 10;

        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            return each(names, (client, n) -> client.stop(n, Duration.ofSeconds(seconds)));
        }
    }

    @Command(
            name = "pause",
            description = "Save running microVM sandboxes to disk (memory, processes) and free their memory.")
    static final class Pause implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            return each(names, (client, n) -> client.pause(n));
        }
    }

    @Command(name = "resume", description = "Bring paused sandboxes back, their processes where they were.")
    static final class Resume implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            return each(names, (client, n) -> client.resume(n));
        }
    }

    @Command(
            name = "fork",
            description = "Clone a running microVM sandbox (memory, processes, files); clones are NAME-1 ... NAME-N.")
    static final class Fork implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX", index = "0")
        String source = "";

        @Option(
                names = {"-n", "--count"},
                description = "How many clones (default 1, at most 64).")
        @org.jspecify.annotations.Nullable
        Integer count;

        @Option(names = "--name", description = "Name a clone (repeat once per clone) instead of SANDBOX-1 ...")
        List<String> cloneNames = new ArrayList<>();

        @Option(names = "--json", description = "Print the clones' records as JSON.")
        boolean json;

        @Override
        public Integer call() {
            List<SandboxInfo> clones =
                    client().fork(source, new ForkSpec(count, cloneNames.isEmpty() ? null : cloneNames));
            if (json) {
                Output.json(clones);
            } else {
                clones.forEach(c -> System.out.println(c.name()));
            }
            return 0;
        }
    }

    @Command(name = "kill", description = "Kill sandboxes' VMs at once.")
    static final class Kill implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            return each(names, (client, n) -> client.kill(n));
        }
    }

    @Command(name = "rm", description = "Remove sandboxes and their disks.")
    static final class Rm implements Callable<Integer> {
        @Option(
                names = {"-f", "--force"},
                description = "Kill running sandboxes first.")
        boolean force;

        @Parameters(paramLabel = "SANDBOX", arity = "1..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            return each(names, (client, n) -> client.remove(n, force));
        }
    }

    @Command(name = "stats", description = "Show sandboxes' resource use.")
    static final class Stats implements Callable<Integer> {
        @Option(names = "--json")
        boolean json;

        @Option(names = "--inference", description = "Show inference bridge usage (requests, throttled, bytes).")
        boolean inference;

        @Parameters(paramLabel = "SANDBOX", arity = "0..*")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            SandboxService client = client();
            List<String> which = names.isEmpty()
                    ? client.list().stream()
                            .filter(SandboxInfo::running)
                            .map(SandboxInfo::name)
                            .toList()
                    : names;
            if (inference) {
                List<List<String>> rows = new ArrayList<>();
                List<Object> all = new ArrayList<>();
                for (String n : which) {
                    dev.airlock.service.InferenceUsage u = client.inferenceUsage(n);
                    all.add(Map.of("name", n, "usage", u));
                    rows.add(List.of(
                            n,
                            String.valueOf(u.requests()),
                            String.valueOf(u.throttled()),
                            String.valueOf(u.bytesIn()),
                            String.valueOf(u.bytesOut())));
                }
                if (json) {
                    Output.json(all);
                } else {
                    Output.table(System.out, List.of("NAME", "REQUESTS", "THROTTLED", "BYTES IN", "BYTES OUT"), rows);
                }
                return 0;
            }
            List<SandboxStats> stats = which.stream().map(client::stats).toList();
            if (json) {
                Output.json(stats);
                return 0;
            }
            Output.table(
                    System.out,
                    List.of("NAME", "STATE", "CPU TIME", "VMM RSS", "VMM PSS", "DISK USED", "LIMITS"),
                    stats.stream()
                            .map(s -> List.of(
                                    s.name(),
                                    s.state(),
                                    String.format("%.1fs", s.cpuSeconds()),
                                    (s.vmmRssBytes() >> 20) + " MiB",
                                    (s.vmmPssBytes() >> 20) + " MiB",
                                    (s.diskUsedBytes() >> 20) + " MiB / " + (s.diskSizeBytes() >> 20) + " MiB",
                                    s.cpus() + " cpu, " + s.memoryLimitMiB() + "m"))
                            .toList());
            return 0;
        }
    }

    @Command(name = "cp", description = "Copy files or directories between the host and a sandbox (NAME:PATH).")
    static final class Cp implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SRC")
        String src = "";

        @Parameters(index = "1", paramLabel = "DST")
        String dst = "";

        @Override
        public Integer call() throws Exception {
            new Copy(client()).copy(src, dst);
            return 0;
        }
    }
}
