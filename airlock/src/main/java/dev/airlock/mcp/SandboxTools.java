package dev.airlock.mcp;

import dev.airlock.guest.DirEntry;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import dev.airlock.host.CappedOutputStream;
import dev.airlock.net.NetworkSpec;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ExecRequest;
import dev.airlock.service.ExecResult;
import dev.airlock.service.ForkSpec;
import dev.airlock.service.PolicyChange;
import dev.airlock.service.ProgressListener;
import dev.airlock.service.PullResult;
import dev.airlock.service.PullSpec;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import dev.airlock.service.WorkspaceSpec;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.server.McpServerFeatures.SyncToolSpecification;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.Tool;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The tools an agent gets from {@code airlock mcp}: sandboxes (create, list, remove, fork),
 * commands, files, a workspace's commits back to the host, and the egress allowlist. Each tool
 * is a thin call of the {@link SandboxService}; what goes wrong (a bad argument, an unknown
 * sandbox, a failed command start) comes back as the tool's error result with the service's
 * message, never as a protocol error, so the model can read it and try again.
 *
 * <p>The descriptions are written for the model that reads them: what the tool does, what it
 * returns, its limits, and what to do next.
 */
public final class SandboxTools {
    /** Output per stream an exec returns unless asked for more; enough for a build's errors. */
    static final int DEFAULT_OUTPUT = 32 * 1024;

    static final int MAX_OUTPUT = 1 << 20;
    static final int DEFAULT_READ = 256 * 1024;
    static final int MAX_READ = 4 << 20;
    static final int MAX_WRITE = 16 << 20;
    static final long DEFAULT_TIMEOUT_SECONDS = 120;
    static final long MAX_TIMEOUT_SECONDS = 3600;

    private final SandboxService service;
    private final McpJsonMapper json;
    private final java.util.concurrent.Phaser inFlight = new java.util.concurrent.Phaser(1);

    public SandboxTools(SandboxService service, McpJsonMapper json) {
        this.service = service;
        this.json = json;
    }

    /** Every tool, in the order a model should meet them. */
    public List<SyncToolSpecification> all() {
        return List.of(
                tool("create_sandbox", CREATE_DESCRIPTION, CREATE_SCHEMA, this::create),
                tool(
                        "list_sandboxes",
                        "List every Airlock sandbox with its name, state (running, stopped, paused, failed),"
                                + " runtime, image and network mode. Use the names with the other tools.",
                        "{\"type\":\"object\",\"properties\":{}}",
                        args -> text(listing(service.list()))),
                tool(
                        "remove_sandbox",
                        "Delete a sandbox and its disk, stopping it first if it runs. Everything inside is lost:"
                                + " pull a workspace's commits (pull_workspace) before removing it. Returns the"
                                + " removed sandbox's name.",
                        SANDBOX_ONLY_SCHEMA,
                        args -> text("removed "
                                + service.remove(args.string("sandbox"), true).name())),
                tool("exec", EXEC_DESCRIPTION, EXEC_SCHEMA, this::exec),
                tool("read_file", READ_DESCRIPTION, READ_SCHEMA, this::readFile),
                tool("write_file", WRITE_DESCRIPTION, WRITE_SCHEMA, this::writeFile),
                tool("list_files", LIST_DESCRIPTION, PATH_SCHEMA, this::listFiles),
                tool("fork_sandbox", FORK_DESCRIPTION, FORK_SCHEMA, this::fork),
                tool("pull_workspace", PULL_DESCRIPTION, PULL_SCHEMA, this::pull),
                tool("allow_host", ALLOW_DESCRIPTION, ALLOW_SCHEMA, this::allow));
    }

    private SyncToolSpecification tool(
            String name, String description, String schema, Function<ToolArguments, CallToolResult> body) {
        Tool tool = Tool.builder()
                .name(name)
                .description(description)
                .inputSchema(json, schema)
                .build();
        return SyncToolSpecification.builder()
                .tool(tool)
                .callHandler((exchange, request) -> {
                    inFlight.register();
                    try {
                        return call(body, request.arguments());
                    } finally {
                        inFlight.arriveAndDeregister();
                    }
                })
                .build();
    }

    /**
     * Waits until no tool call is running, at most {@code limit}: a client that closes the stdio
     * input right after its last request still gets that request's answer.
     */
    void awaitIdle(java.time.Duration limit) throws InterruptedException {
        int phase = inFlight.arrive();
        try {
            inFlight.awaitAdvanceInterruptibly(phase, limit.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            // Calls still running are abandoned with the process.
        }
    }

    /** Runs a tool; every failure becomes the tool's error result, in words. */
    static CallToolResult call(Function<ToolArguments, CallToolResult> body, @Nullable Map<String, Object> arguments) {
        try {
            return body.apply(new ToolArguments(arguments));
        } catch (SandboxException e) {
            return error(String.valueOf(e.getMessage()));
        } catch (IllegalArgumentException e) {
            return error("invalid argument: " + e.getMessage());
        } catch (RuntimeException e) {
            return error("Airlock failed: " + e);
        }
    }

    private static CallToolResult error(String message) {
        return CallToolResult.builder().addTextContent(message).isError(true).build();
    }

    private static CallToolResult text(String message) {
        return CallToolResult.builder().addTextContent(message).isError(false).build();
    }

    // ---- sandboxes -----------------------------------------------------------------------------

    private CallToolResult create(ToolArguments args) {
        Long memory = args.optionalLong("memory_mib", 64, 1 << 20);
        Long cpus = args.optionalLong("cpus", 1, 256);
        CreateSpec spec = CreateSpec.builder()
                .name(args.optionalString("name"))
                .image(args.optionalString("image"))
                .runtime(args.optionalString("runtime"))
                .cpus(cpus == null ? null : cpus.intValue())
                .memoryMiB(memory == null ? null : memory.intValue())
                .diskMiB(args.optionalLong("disk_mib", 64, 1L << 30))
                .lifetimeSeconds(args.optionalLong("lifetime_seconds", 1, 30L * 24 * 3600))
                .env(args.optionalStringMap("env"))
                .allowHosts(args.optionalStrings("allow_hosts"))
                .build();
        String workspace = args.optionalString("workspace");
        SandboxInfo info;
        if (workspace == null || workspace.isBlank()) {
            info = service.create(spec);
            if (!info.running()) {
                info = service.start(info.name());
            }
        } else {
            String repo = Path.of(workspace).toAbsolutePath().normalize().toString();
            info = service.createWorkspace(
                    new WorkspaceSpec(repo, args.bool("uncommitted", false), spec, true), ProgressListener.NONE);
        }
        StringBuilder out = new StringBuilder();
        out.append("created sandbox '")
                .append(info.name())
                .append("' and it is ")
                .append(state(info));
        out.append("\n").append(describe(info));
        if (info.workspace() != null) {
            out.append("\nThe repository is in /workspace; commit there and use pull_workspace to bring the commits")
                    .append(" back to the host.");
        }
        return text(out.toString());
    }

    private static String state(SandboxInfo info) {
        return info.state().name().toLowerCase(java.util.Locale.ROOT);
    }

    private static String describe(SandboxInfo s) {
        return "name=" + s.name() + " state=" + state(s) + " runtime=" + s.runtime() + " image=" + s.image()
                + " cpus=" + s.resources().cpus() + " memory=" + s.resources().memoryMiB() + "MiB network="
                + s.network() + (s.workspace() != null ? " workspace=" + s.workspace() : "");
    }

    private static String listing(List<SandboxInfo> sandboxes) {
        if (sandboxes.isEmpty()) {
            return "no sandboxes; make one with create_sandbox";
        }
        StringBuilder out = new StringBuilder();
        for (SandboxInfo s : sandboxes) {
            out.append(describe(s)).append('\n');
        }
        return out.toString().strip();
    }

    private CallToolResult fork(ToolArguments args) {
        long count = args.longOr("count", 1, 16, 1);
        List<SandboxInfo> clones = service.fork(args.string("sandbox"), new ForkSpec((int) count, null));
        List<String> names = clones.stream().map(SandboxInfo::name).toList();
        return text("forked into " + String.join(", ", names)
                + "; each clone runs with the source's memory, processes and files as they were, and changes"
                + " independently from here on");
    }

    private CallToolResult pull(ToolArguments args) {
        String message = args.optionalString("message");
        PullResult result;
        try {
            result = service.pull(
                    args.string("sandbox"),
                    new PullSpec(args.optionalString("branch"), args.bool("include_uncommitted", false), message));
        } catch (IOException e) {
            throw new SandboxException("pulling the workspace failed: " + e.getMessage(), e);
        }
        if (result.head() == null) {
            return text("no new commits in the sandbox; branch " + result.branch() + " is unchanged"
                    + (result.uncommittedLeft() > 0
                            ? " (" + result.uncommittedLeft() + " uncommitted changes are still in the sandbox:"
                                    + " commit them there or call again with include_uncommitted=true)"
                            : ""));
        }
        return text("branch " + result.branch() + " of the host repository now points at " + result.head() + " ("
                + result.commits() + " commit(s) on top of " + result.base() + ")"
                + (result.uncommittedLeft() > 0
                        ? "; " + result.uncommittedLeft() + " uncommitted changes stay in the sandbox"
                        : ""));
    }

    private CallToolResult allow(ToolArguments args) {
        List<String> hosts = args.optionalStrings("hosts");
        if (hosts == null || hosts.isEmpty()) {
            throw new SandboxException("argument 'hosts' is required: a list of host names such as pypi.org");
        }
        NetworkSpec spec = service.changePolicy(args.string("sandbox"), new PolicyChange(hosts, null, null, null));
        return text("the sandbox may now reach: " + String.join(", ", spec.allowHosts())
                + " (HTTP and HTTPS through its proxy; other hosts stay refused)");
    }

    // ---- commands ------------------------------------------------------------------------------

    private CallToolResult exec(ToolArguments args) {
        String sandbox = args.string("sandbox");
        String command = args.optionalString("command");
        List<String> argv = args.optionalStrings("argv");
        if ((command == null || command.isBlank()) == (argv == null || argv.isEmpty())) {
            throw new SandboxException(
                    "give exactly one of 'command' (a shell command line) or 'argv' (a program and its arguments)");
        }
        List<String> cmd = command != null && !command.isBlank() ? List.of("/bin/sh", "-c", command) : argv;
        long timeout = args.longOr("timeout_seconds", 1, MAX_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS);
        int limit = (int) args.longOr("max_output_bytes", 256, MAX_OUTPUT, DEFAULT_OUTPUT);
        ExecResult r;
        try {
            r = service.exec(
                    sandbox,
                    new ExecRequest(
                            cmd,
                            args.optionalStringMap("env"),
                            args.optionalString("cwd"),
                            args.optionalString("user"),
                            timeout * 1000,
                            args.optionalString("stdin")));
        } catch (IOException e) {
            throw new SandboxException("the command could not run: " + e.getMessage(), e);
        }
        String stdout = bounded(r.stdout(), limit);
        String stderr = bounded(r.stderr(), limit);
        StringBuilder out = new StringBuilder();
        if (r.timedOut()) {
            out.append("timed out after ").append(timeout).append(" s and was killed");
        } else if (r.signal() != 0) {
            out.append("killed by signal ").append(r.signal());
        } else {
            out.append("exit code ").append(r.exitCode());
        }
        if (r.oomKilled()) {
            out.append(" (the sandbox ran out of memory)");
        }
        out.append("\n--- stdout ---\n").append(stdout);
        out.append("\n--- stderr ---\n").append(stderr);
        Map<String, Object> structured = new LinkedHashMap<>();
        structured.put("exitCode", r.exitCode());
        structured.put("signal", r.signal());
        structured.put("timedOut", r.timedOut());
        structured.put("stdout", stdout);
        structured.put("stderr", stderr);
        // A non-zero exit is the command's answer, not the tool failing: the model reads it.
        return CallToolResult.builder()
                .addTextContent(out.toString())
                .structuredContent(structured)
                .isError(false)
                .build();
    }

    /** Keeps the start and the end of long output (errors are usually at the end), saying what was cut. */
    static String bounded(String text, int limit) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= limit) {
            return text;
        }
        int head = limit / 4;
        int tail = limit - head;
        String start = new String(bytes, 0, head, StandardCharsets.UTF_8);
        String end = new String(bytes, bytes.length - tail, tail, StandardCharsets.UTF_8);
        return start + "\n[... " + (bytes.length - head - tail) + " bytes omitted; redirect to a file and read"
                + " parts of it to see them ...]\n" + end;
    }

    // ---- files ---------------------------------------------------------------------------------

    private static String path(ToolArguments args) {
        String path = args.string("path");
        if (!path.startsWith("/")) {
            throw new SandboxException("path '" + path + "' must be absolute (start with /), e.g. /workspace/" + path);
        }
        if (path.indexOf('\0') >= 0) {
            throw new SandboxException("path contains a NUL character");
        }
        return path;
    }

    private CallToolResult readFile(ToolArguments args) {
        String sandbox = args.string("sandbox");
        String path = path(args);
        int limit = (int) args.longOr("max_bytes", 1, MAX_READ, DEFAULT_READ);
        try {
            FileStat stat = service.stat(sandbox, path);
            if (stat.type() == FileType.DIRECTORY) {
                throw new SandboxException(path + " is a directory: use list_files");
            }
            if (stat.size() > limit) {
                throw new SandboxException(path + " is " + stat.size() + " bytes, more than the " + limit
                        + " this call may read: raise max_bytes (at most " + MAX_READ + ") or read a part with"
                        + " exec (head -c, tail -c, sed -n)");
            }
            ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            service.readFile(sandbox, path, new CappedOutputStream(buffer, limit, path));
            byte[] bytes = buffer.toByteArray();
            String utf8 = strictUtf8(bytes);
            if (utf8 != null) {
                return text(utf8);
            }
            return text("(" + bytes.length + " bytes, not UTF-8 text; base64 follows)\n"
                    + Base64.getEncoder().encodeToString(bytes));
        } catch (CappedOutputStream.LimitExceededException e) {
            throw new SandboxException(path + " grew past " + limit + " bytes while it was read; read it again"
                    + " with a larger max_bytes");
        } catch (IOException e) {
            throw new SandboxException("reading " + path + " failed: " + e.getMessage(), e);
        }
    }

    private static @Nullable String strictUtf8(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private CallToolResult writeFile(ToolArguments args) {
        String sandbox = args.string("sandbox");
        String path = path(args);
        String content = args.optionalString("content");
        if (content == null) {
            throw new SandboxException("argument 'content' is required: the file's text (\"\" for an empty file)");
        }
        String encoding = args.optionalString("encoding");
        byte[] bytes;
        if (encoding == null || encoding.equalsIgnoreCase("utf-8") || encoding.equalsIgnoreCase("utf8")) {
            bytes = content.getBytes(StandardCharsets.UTF_8);
        } else if (encoding.equalsIgnoreCase("base64")) {
            try {
                bytes = Base64.getMimeDecoder().decode(content);
            } catch (IllegalArgumentException e) {
                throw new SandboxException("content is not valid base64: " + e.getMessage());
            }
        } else {
            throw new SandboxException("encoding must be utf-8 or base64, not '" + encoding + "'");
        }
        if (bytes.length > MAX_WRITE) {
            throw new SandboxException("content is " + bytes.length + " bytes; write_file takes at most " + MAX_WRITE
                    + ": split it or generate it inside the sandbox");
        }
        int mode = mode(args.optionalString("mode"));
        try {
            long size = service.writeFile(sandbox, path, new ByteArrayInputStream(bytes), mode, true);
            return text("wrote " + size + " bytes to " + path);
        } catch (IOException e) {
            throw new SandboxException("writing " + path + " failed: " + e.getMessage(), e);
        }
    }

    private static int mode(@Nullable String mode) {
        if (mode == null) {
            return 0644;
        }
        if (!mode.matches("0?[0-7]{3}")) {
            throw new SandboxException("mode must be octal permission bits such as 0644 or 0755, not '" + mode + "'");
        }
        return Integer.parseInt(mode, 8);
    }

    private CallToolResult listFiles(ToolArguments args) {
        String sandbox = args.string("sandbox");
        String path = path(args);
        List<DirEntry> entries;
        try {
            entries = service.listDir(sandbox, path);
        } catch (IOException e) {
            throw new SandboxException("listing " + path + " failed: " + e.getMessage(), e);
        }
        if (entries.isEmpty()) {
            return text(path + " is empty");
        }
        List<String> lines = new ArrayList<>();
        for (DirEntry e : entries) {
            FileStat s = e.stat();
            String kind = switch (s.type()) {
                case DIRECTORY -> "dir ";
                case SYMLINK -> "link";
                case FILE -> "file";
                case OTHER -> "other";
            };
            lines.add(kind + " " + String.format("%04o", s.permissions()) + " " + s.size() + "\t" + e.name()
                    + (s.type() == FileType.DIRECTORY ? "/" : ""));
        }
        return text(String.join("\n", lines));
    }

    // ---- descriptions and schemas ----------------------------------------------------------------

    private static final String CREATE_DESCRIPTION = """
            Create and start an isolated Linux sandbox (a microVM by default, or a container) and return \
            its name. Nothing in it can reach the host or the network unless allowed: pass allow_hosts to \
            let it reach those hosts over HTTP(S) (e.g. ["pypi.org", "*.pythonhosted.org"]), or call \
            allow_host later. Pass workspace (a path to a git repository on the host) to get a copy of \
            that repository in /workspace; its commits come back with pull_workspace. Commands run as root \
            unless exec names a user; the image has an unprivileged user 'airlock'. Remove the sandbox \
            with remove_sandbox when done.""";

    private static final String CREATE_SCHEMA = """
            {"type":"object","properties":{
              "name":{"type":"string","description":"A name for the sandbox (letters, digits, '_', '.', '-'); a random one if left out."},
              "image":{"type":"string","description":"The image to boot, default 'base' (Debian with common tools)."},
              "runtime":{"type":"string","description":"'microvm' (default, hardware isolation) or 'container' (faster start, weaker isolation)."},
              "cpus":{"type":"integer","description":"Virtual CPUs, default 1."},
              "memory_mib":{"type":"integer","description":"Memory in MiB, default 512."},
              "disk_mib":{"type":"integer","description":"Writable disk in MiB, default 4096."},
              "env":{"type":"object","additionalProperties":{"type":"string"},"description":"Environment variables every command gets."},
              "allow_hosts":{"type":"array","items":{"type":"string"},"description":"Hosts the sandbox may reach over HTTP(S); '*.example.com' allows subdomains. Default: no network."},
              "workspace":{"type":"string","description":"Path of a git repository on the host to copy into /workspace."},
              "uncommitted":{"type":"boolean","description":"With workspace: bring uncommitted and untracked files too (default false)."},
              "lifetime_seconds":{"type":"integer","description":"Stop the sandbox after this many seconds."}
            }}""";

    private static final String SANDBOX_ONLY_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The sandbox's name (from create_sandbox or list_sandboxes)."}
            },"required":["sandbox"]}""";

    private static final String EXEC_DESCRIPTION = """
            Run a command in a running sandbox and wait for it to finish. Give either command (a shell \
            command line, run with /bin/sh -c, so pipes, && and redirections work) or argv (a program and \
            its arguments, no shell). Returns the exit code, stdout and stderr. A non-zero exit code is \
            the command's result, not a failure of this tool. Output longer than max_output_bytes per \
            stream keeps its start and end (redirect to a file and read_file it to see everything). The \
            command is killed after timeout_seconds (default 120). Nothing is kept between calls except \
            files: use cwd and env, or a script, for state.""";

    private static final String EXEC_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The sandbox's name."},
              "command":{"type":"string","description":"A shell command line, e.g. 'cd /workspace && make test 2>&1 | tail -50'."},
              "argv":{"type":"array","items":{"type":"string"},"description":"Instead of command: the program and its arguments."},
              "cwd":{"type":"string","description":"Absolute working directory (default: the sandbox's)."},
              "env":{"type":"object","additionalProperties":{"type":"string"},"description":"Extra environment variables."},
              "user":{"type":"string","description":"Run as this user (a name such as 'airlock', or a uid); default root."},
              "stdin":{"type":"string","description":"Text fed to the command's standard input."},
              "timeout_seconds":{"type":"integer","description":"Kill the command after this many seconds (1-3600, default 120)."},
              "max_output_bytes":{"type":"integer","description":"Bytes of stdout and of stderr to return (256-1048576, default 32768)."}
            },"required":["sandbox"]}""";

    private static final String READ_DESCRIPTION = """
            Read a file from a running sandbox. Returns its text (UTF-8), or base64 if it is binary. Files \
            larger than max_bytes (default 262144) are refused with their size: read parts with exec \
            (head, tail, sed -n 'A,Bp').""";

    private static final String READ_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The sandbox's name."},
              "path":{"type":"string","description":"Absolute path inside the sandbox, e.g. /workspace/README.md."},
              "max_bytes":{"type":"integer","description":"Largest file to return (1-4194304, default 262144)."}
            },"required":["sandbox","path"]}""";

    private static final String WRITE_DESCRIPTION = """
            Create or replace a file in a running sandbox, creating missing parent directories. The file \
            is replaced whole and at once: a reader sees the old or the new content, never half. content \
            is text, or base64 with encoding='base64' for binary data (at most 16 MiB).""";

    private static final String WRITE_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The sandbox's name."},
              "path":{"type":"string","description":"Absolute path inside the sandbox."},
              "content":{"type":"string","description":"The file's new content."},
              "encoding":{"type":"string","enum":["utf-8","base64"],"description":"How content is encoded (default utf-8)."},
              "mode":{"type":"string","description":"Octal permissions, e.g. '0755' for a script (default '0644')."}
            },"required":["sandbox","path","content"]}""";

    private static final String LIST_DESCRIPTION = """
            List a directory in a running sandbox: one line per entry with its kind (file, dir, link), \
            octal permissions, size in bytes and name (directories end with /).""";

    private static final String PATH_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The sandbox's name."},
              "path":{"type":"string","description":"Absolute path of a directory inside the sandbox."}
            },"required":["sandbox","path"]}""";

    private static final String FORK_DESCRIPTION = """
            Clone a running microVM sandbox: each clone starts with the source's memory, running \
            processes and files as they were at one instant, then diverges. Use it to try several \
            approaches from the same state. Returns the clones' names (SOURCE-1, SOURCE-2, ...).""";

    private static final String FORK_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The running sandbox to clone."},
              "count":{"type":"integer","description":"How many clones (1-16, default 1)."}
            },"required":["sandbox"]}""";

    private static final String PULL_DESCRIPTION = """
            Bring the commits made in a workspace sandbox's /workspace back to the host repository it \
            was created from, as branch airlock/SANDBOX (or the branch given). Only a fast-forward is \
            made; the host's working tree and current branch are never touched. Uncommitted changes stay \
            in the sandbox unless include_uncommitted is true (they are committed first, with message).""";

    private static final String PULL_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The workspace sandbox's name."},
              "branch":{"type":"string","description":"Host branch to create or fast-forward (default airlock/SANDBOX)."},
              "include_uncommitted":{"type":"boolean","description":"Commit uncommitted changes in the sandbox first (default false)."},
              "message":{"type":"string","description":"Message of that commit."}
            },"required":["sandbox"]}""";

    private static final String ALLOW_DESCRIPTION = """
            Let a sandbox reach more hosts over HTTP(S), at once and without a restart. Names only (no \
            IP addresses); '*.example.com' allows every subdomain. The sandbox must have been created \
            with network access (allow_hosts in create_sandbox); private and loopback addresses stay \
            refused.""";

    private static final String ALLOW_SCHEMA = """
            {"type":"object","properties":{
              "sandbox":{"type":"string","description":"The sandbox's name."},
              "hosts":{"type":"array","items":{"type":"string"},"description":"Host names to allow, e.g. [\\"github.com\\"]."}
            },"required":["sandbox","hosts"]}""";

    /** The capabilities to announce: tools only. */
    static McpSchema.ServerCapabilities capabilities() {
        return McpSchema.ServerCapabilities.builder().tools(false).build();
    }
}
