package dev.airlock.client;

import dev.airlock.guest.DirEntry;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.ProcessExit;
import dev.airlock.net.NetworkSpec;
import dev.airlock.sandbox.Names;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxStats;
import dev.airlock.sdk.http.DaemonHttp;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.EventFeed;
import dev.airlock.service.ExecRequest;
import dev.airlock.service.ExecResult;
import dev.airlock.service.ForkSpec;
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
import dev.airlock.wire.ApiError;
import dev.airlock.wire.Build;
import dev.airlock.wire.FileInfo;
import dev.airlock.wire.ImageEvent;
import dev.airlock.wire.Json;
import dev.airlock.wire.MakeDirRequest;
import dev.airlock.wire.MoveRequest;
import dev.airlock.wire.PortRequest;
import dev.airlock.wire.Protocol;
import dev.airlock.wire.WorkspaceEvent;
import java.io.BufferedReader;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.type.TypeReference;

/**
 * The sandbox service of this data directory's daemon, over its HTTP API on a unix socket: the
 * same interface the daemon implements, so a front end behaves the same in or out of the
 * daemon. The daemon is started on the first call that finds none, and replaced when it runs
 * another build of Airlock (its sandboxes keep running). Errors come back as the same
 * {@link SandboxException}s the service throws, kind included.
 */
public final class DaemonClient implements SandboxService {
    private static final Duration START_LIMIT = Duration.ofSeconds(30);
    /** JSON answers are small (a list of sandboxes); a log's end is at most a few MiB. */
    private static final int MAX_ANSWER = 64 << 20;

    private final AirlockDirs dirs;
    private final DaemonHttp http;

    private DaemonClient(AirlockDirs dirs) {
        this.dirs = dirs;
        // The client's build travels with every call: a daemon of another build answers STALE_DAEMON.
        this.http = new DaemonHttp(
                UnixDomainSocketAddress.of(socket(dirs)), "airlockd", Map.of(Protocol.BUILD_HEADER, Build.id()));
    }

    /** The daemon's socket for this data directory (airlock-runtime's stand-in connects to it itself). */
    public static Path socket(AirlockDirs dirs) {
        return dirs.runtime().resolve("airlockd.sock");
    }

    /** The daemon of this data directory; nothing is sent until the first call. */
    public static DaemonClient connect(AirlockDirs dirs) {
        return new DaemonClient(dirs);
    }

    public AirlockDirs dirs() {
        return dirs;
    }

    // ---- lifecycle -------------------------------------------------------------------------

    @Override
    public SandboxInfo create(CreateSpec spec) {
        return info(call("POST", "/v1/sandboxes", spec));
    }

    @Override
    public SandboxInfo start(String ref) {
        return info(call("POST", sandbox(ref) + "/start", null));
    }

    @Override
    public SandboxInfo stop(String ref, Duration grace) {
        return info(call("POST", sandbox(ref) + "/stop?timeout=" + grace.toSeconds(), null));
    }

    @Override
    public SandboxInfo kill(String ref) {
        return info(call("POST", sandbox(ref) + "/kill", null));
    }

    @Override
    public SandboxInfo pause(String ref) {
        return info(call("POST", sandbox(ref) + "/pause", null));
    }

    @Override
    public SandboxInfo resume(String ref) {
        return info(call("POST", sandbox(ref) + "/resume", null));
    }

    @Override
    public List<SandboxInfo> fork(String ref, ForkSpec spec) {
        return SandboxInfoJson.readList(call("POST", sandbox(ref) + "/fork", spec));
    }

    @Override
    public SandboxInfo remove(String ref, boolean force) {
        return info(call("DELETE", sandbox(ref) + (force ? "?force=true" : ""), null));
    }

    @Override
    public SandboxInfo inspect(String ref) {
        return info(call("GET", sandbox(ref), null));
    }

    @Override
    public List<SandboxInfo> list() {
        return SandboxInfoJson.readList(call("GET", "/v1/sandboxes", null));
    }

    @Override
    public SandboxStats stats(String ref) {
        return json(call("GET", sandbox(ref) + "/stats", null), SandboxStats.class);
    }

    @Override
    public String logs(String ref, LogKind kind, int maxBytes) {
        byte[] text = call("GET", sandbox(ref) + "/logs?kind=" + kind.name().toLowerCase(java.util.Locale.ROOT), null);
        return new String(
                text,
                Math.max(0, text.length - maxBytes),
                Math.min(text.length, maxBytes),
                kind == LogKind.CONSOLE ? StandardCharsets.ISO_8859_1 : StandardCharsets.UTF_8);
    }

    // ---- sessions --------------------------------------------------------------------------

    /**
     * One request to the daemon: the answer is the sandbox (one JSON line) and then the guest
     * protocol, carried both ways in the bodies until the session ends.
     */
    @Override
    public SandboxSession session(String ref) throws IOException {
        DaemonHttp.Exchange ex = withDaemon(() -> {
            DaemonHttp.Exchange e = http.open("POST", sandbox(ref) + "/session", Protocol.GUEST_FRAMES, new byte[0]);
            if (e.response().status() != 200) {
                try (DaemonHttp.Response failed = e.response()) {
                    e.requestBody().close();
                    throw error(failed);
                }
            }
            return e;
        });
        InputStream body = ex.response().body();
        try {
            SandboxInfo info = SandboxInfoJson.read(firstLine(body));
            GuestChannel ch = GuestChannel.open(body, ex.requestBody(), Duration.ofSeconds(30));
            return new SandboxSession(info, ch);
        } catch (IOException | RuntimeException e) {
            ex.requestBody().close();
            body.close();
            throw e;
        } catch (InterruptedException e) {
            ex.requestBody().close();
            body.close();
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while opening a session to " + ref, e);
        }
    }

    private static String firstLine(InputStream in) throws IOException {
        StringBuilder line = new StringBuilder();
        while (true) {
            int c = in.read();
            if (c < 0) {
                throw new EOFException("the daemon ended the session before it began");
            }
            if (c == '\n') {
                return line.toString();
            }
            if (line.length() > (1 << 20)) {
                throw new IOException("the daemon's session answer does not start with a JSON line");
            }
            line.append((char) c);
        }
    }

    // ---- network ---------------------------------------------------------------------------

    @Override
    public NetworkSpec network(String ref) {
        return json(call("GET", sandbox(ref) + "/network", null), NetworkSpec.class);
    }

    @Override
    public NetworkSpec changePolicy(String ref, PolicyChange change) {
        return json(call("PATCH", sandbox(ref) + "/network", change), NetworkSpec.class);
    }

    @Override
    public NetworkSpec publish(String ref, String mapping) {
        return json(call("POST", sandbox(ref) + "/ports", new PortRequest(mapping)), NetworkSpec.class);
    }

    @Override
    public NetworkSpec unpublish(String ref, int hostPort) {
        return json(call("DELETE", sandbox(ref) + "/ports/" + hostPort, null), NetworkSpec.class);
    }

    @Override
    public InferenceUsage inferenceUsage(String ref) {
        return json(call("GET", sandbox(ref) + "/inference", null), InferenceUsage.class);
    }

    // ---- workspaces ------------------------------------------------------------------------

    @Override
    public SandboxInfo createWorkspace(WorkspaceSpec spec, ProgressListener progress) {
        byte[] body = Json.MAPPER.writeValueAsBytes(spec);
        DaemonHttp.Response response;
        try {
            response = withDaemon(() -> checked(http.send("POST", "/v1/workspaces", body, "application/json")));
        } catch (IOException e) {
            throw new SandboxException("the Airlock daemon did not take the workspace: " + e.getMessage(), e);
        }
        try (DaemonHttp.Response r = response) {
            BufferedReader lines = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                WorkspaceEvent e = Json.MAPPER.readValue(line, WorkspaceEvent.class);
                switch (e.type()) {
                    case "step" -> progress.step(String.valueOf(e.message()));
                    case "output" -> progress.output(Base64.getDecoder().decode(String.valueOf(e.data())));
                    case "done" -> {
                        if (e.sandbox() == null) {
                            throw SandboxException.failed("the daemon finished a workspace without its sandbox");
                        }
                        return e.sandbox();
                    }
                    case "error" -> throw error(e.error());
                    default -> {
                        // A newer daemon's event: nothing this client shows.
                    }
                }
            }
            throw SandboxException.failed("the daemon ended the workspace answer early; see " + log());
        } catch (IOException e) {
            throw new SandboxException("lost the daemon while making the workspace: " + e.getMessage(), e);
        }
    }

    @Override
    public void diff(String ref, OutputStream out) throws IOException {
        try (DaemonHttp.Response r = withDaemon(() -> checked(http.send("GET", sandbox(ref) + "/diff", null, "")))) {
            r.body().transferTo(out);
        }
        out.flush();
    }

    @Override
    public PullResult pull(String ref, PullSpec spec) {
        return json(call("POST", sandbox(ref) + "/pull", spec), PullResult.class);
    }

    @Override
    public RemovedImage removeImage(String name) {
        return json(
                call("DELETE", "/v1/images?name=" + URLEncoder.encode(name, StandardCharsets.UTF_8), null),
                RemovedImage.class);
    }

    @Override
    public ImageInfo buildImage(ImageBuildSpec spec, ProgressListener progress) {
        return imageWork("/v1/images/build", spec, "build", progress);
    }

    @Override
    public ImageInfo pullImage(ImagePullSpec spec, ProgressListener progress) {
        return imageWork("/v1/images/pull", spec, "pull", progress);
    }

    /** A build or pull: the daemon's {@link ImageEvent} lines passed to {@code progress}, then the image. */
    private ImageInfo imageWork(String path, Object spec, String what, ProgressListener progress) {
        byte[] body = Json.MAPPER.writeValueAsBytes(spec);
        DaemonHttp.Response response;
        try {
            response = withDaemon(() -> checked(http.send("POST", path, body, "application/json")));
        } catch (IOException e) {
            throw new SandboxException("the Airlock daemon did not take the image " + what + ": " + e.getMessage(), e);
        }
        try (DaemonHttp.Response r = response) {
            BufferedReader lines = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                ImageEvent e = Json.MAPPER.readValue(line, ImageEvent.class);
                switch (e.type()) {
                    case "step" -> progress.step(String.valueOf(e.message()));
                    case "output" -> progress.output(Base64.getDecoder().decode(String.valueOf(e.data())));
                    case "done" -> {
                        if (e.image() == null) {
                            throw SandboxException.failed(
                                    "the daemon finished an image " + what + " without the image");
                        }
                        return e.image();
                    }
                    case "error" -> throw error(e.error());
                    default -> {
                        // A newer daemon's event: nothing this client shows.
                    }
                }
            }
            throw SandboxException.failed("the daemon ended the image " + what + " answer early; see " + log());
        } catch (IOException e) {
            throw new SandboxException("lost the daemon during the image " + what + ": " + e.getMessage(), e);
        }
    }

    @Override
    public ExecResult exec(String ref, ExecRequest request) {
        return json(call("POST", sandbox(ref) + "/exec", request), ExecResult.class);
    }

    // ---- files -----------------------------------------------------------------------------

    @Override
    public long readFile(String ref, String path, OutputStream out) throws IOException {
        try (DaemonHttp.Response r = withDaemon(() -> checked(http.send("GET", files(ref, "", path), null, "")))) {
            long n = r.body().transferTo(out);
            out.flush();
            return n;
        }
    }

    @Override
    public long writeFile(String ref, String path, InputStream in, int mode, boolean mkdirs) throws IOException {
        String target = files(ref, "", path) + "&mode=" + Integer.toOctalString(mode) + (mkdirs ? "&mkdirs=true" : "");
        // Sent once, never again after a daemon start: the stream cannot be read twice.
        DaemonHttp.Response sent;
        try {
            sent = http.upload("PUT", target, in, "application/octet-stream");
        } catch (DaemonHttp.Unreachable e) {
            spawn();
            sent = http.upload("PUT", target, in, "application/octet-stream");
        }
        try (DaemonHttp.Response r = checked(sent)) {
            return Json.MAPPER.readValue(r.readAll(MAX_ANSWER), FileInfo.class).size();
        }
    }

    @Override
    public FileStat stat(String ref, String path) {
        return json(call("GET", files(ref, "/stat", path), null), FileInfo.class)
                .toStat();
    }

    @Override
    public List<DirEntry> listDir(String ref, String path) {
        List<FileInfo> entries =
                Json.MAPPER.readValue(call("GET", files(ref, "/list", path), null), new TypeReference<>() {});
        return entries.stream().map(e -> new DirEntry(e.name(), e.toStat())).toList();
    }

    @Override
    public void makeDir(String ref, String path, boolean parents) {
        call("POST", sandbox(ref) + "/files/mkdir", new MakeDirRequest(path, parents));
    }

    @Override
    public void move(String ref, String from, String to) {
        call("POST", sandbox(ref) + "/files/move", new MoveRequest(from, to));
    }

    @Override
    public void removePath(String ref, String path, boolean recursive) {
        call("DELETE", files(ref, "", path) + (recursive ? "&recursive=true" : ""), null);
    }

    private static String files(String ref, String what, String path) {
        return sandbox(ref) + "/files" + what + "?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8);
    }

    // ---- events ----------------------------------------------------------------------------

    /** The daemon's server-sent events, read by a thread of the feed's own into a queue. */
    @Override
    public EventFeed events(@Nullable String ref) {
        String path = "/v1/events"
                + (ref == null ? "" : "?sandbox=" + URLEncoder.encode(Names.validateRef(ref), StandardCharsets.UTF_8));
        DaemonHttp.Response response;
        try {
            response = withDaemon(() -> checked(http.send("GET", path, null, "")));
        } catch (IOException e) {
            throw new SandboxException("the Airlock daemon did not answer GET " + path + ": " + e.getMessage(), e);
        }
        return new SseFeed(response);
    }

    // ---- the calls -------------------------------------------------------------------------

    /** The path of a sandbox's resource: the reference checked, then encoded. */
    private static String sandbox(String ref) {
        return "/v1/sandboxes/" + URLEncoder.encode(Names.validateRef(ref), StandardCharsets.UTF_8);
    }

    /** A sandbox from an answer: read without data binding, whose start-up a short command would pay. */
    private static SandboxInfo info(byte[] body) {
        return SandboxInfoJson.read(body);
    }

    private static <T> T json(byte[] body, Class<T> type) {
        return Json.MAPPER.readValue(body, type);
    }

    /** One call with a JSON body (or none); the answer's body, or the error it carries. */
    private byte[] call(String method, String path, @Nullable Object body) {
        byte[] bytes = body == null ? null : Json.MAPPER.writeValueAsBytes(body);
        try (DaemonHttp.Response r = withDaemon(() -> checked(http.send(method, path, bytes, "application/json")))) {
            return r.readAll(MAX_ANSWER);
        } catch (IOException e) {
            throw new SandboxException(
                    "the Airlock daemon did not answer " + method + " " + path + ": " + e.getMessage() + "; see "
                            + log(),
                    e);
        }
    }

    private static DaemonHttp.Response checked(DaemonHttp.Response r) throws IOException {
        if (r.status() / 100 != 2) {
            try (r) {
                throw error(r);
            }
        }
        return r;
    }

    private static SandboxException error(DaemonHttp.Response r) throws IOException {
        byte[] text = r.readAll(1 << 20);
        ApiError err;
        try {
            err = Json.MAPPER.readValue(text, ApiError.class);
        } catch (RuntimeException e) {
            return SandboxException.failed(
                    "the daemon answered " + r.status() + ": " + new String(text, StandardCharsets.UTF_8).strip());
        }
        if (Protocol.STALE_DAEMON.equals(err.kind())) {
            return new StaleDaemon(err.error());
        }
        return error(err);
    }

    private static SandboxException error(@Nullable ApiError err) {
        if (err == null) {
            return SandboxException.failed("the daemon reported an error without saying which");
        }
        SandboxException.Kind kind;
        try {
            kind = SandboxException.Kind.valueOf(err.kind());
        } catch (IllegalArgumentException e) {
            kind = SandboxException.Kind.FAILED;
        }
        return new SandboxException(kind, err.error());
    }

    /** A daemon of another build answered: it is replaced and the call made again. */
    private static final class StaleDaemon extends SandboxException {
        private static final long serialVersionUID = 1L;

        StaleDaemon(String message) {
            super(Kind.CONFLICT, message);
        }
    }

    private interface DaemonCall<T> {
        T run() throws IOException;
    }

    /**
     * Runs a call, starting the daemon first when none listens, and replacing it when it runs
     * another build; either way the call is made once more.
     */
    private <T> T withDaemon(DaemonCall<T> call) throws IOException {
        try {
            return call.run();
        } catch (StaleDaemon e) {
            replace();
            return call.run();
        } catch (DaemonHttp.Unreachable e) {
            spawn();
            return call.run();
        }
    }

    private Path log() {
        return dirs.data().resolve("airlockd.log");
    }

    private void replace() {
        try {
            long pid = Long.parseLong(
                    Files.readString(dirs.runtime().resolve("airlockd.pid")).strip());
            ProcessHandle.of(pid).ifPresent(p -> {
                p.destroy();
                if (!ProcessExit.await(p.pid(), Duration.ofSeconds(10))) {
                    p.destroyForcibly();
                }
            });
        } catch (IOException | NumberFormatException e) {
            throw SandboxException.failed("a daemon of another Airlock build serves " + dirs.data()
                    + " and its pid file is unreadable; stop it and retry");
        }
        spawn();
    }

    private void spawn() {
        AirlockDirs.ensurePrivateDataDir(dirs.data());
        AirlockDirs.ensurePrivateDir(dirs.runtime());
        String java = ProcessHandle.current()
                .info()
                .command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        // setsid: the daemon must not die with the CLI's terminal session (Ctrl-C, closed shell).
        List<String> argv = List.of(
                "setsid",
                java,
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC",
                "-Dairlock.home=" + dirs.home(),
                "-cp",
                System.getProperty("java.class.path"),
                "dev.airlock.cli.Main",
                "daemon");
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log().toFile()))
                .redirectErrorStream(true);
        pb.environment().put("AIRLOCK_CACHE_DIR", dirs.cache().toString());
        pb.environment().put("AIRLOCK_DATA_DIR", dirs.data().toString());
        pb.environment().put("AIRLOCK_RUNTIME_DIR", dirs.runtime().toString());
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new SandboxException("cannot start the Airlock daemon: " + e.getMessage(), e);
        }
        long deadline = System.nanoTime() + START_LIMIT.toNanos();
        while (!http.answers()) {
            if (!p.isAlive() && !http.answers()) {
                // It may have lost a start race to another daemon, which then answers; otherwise it failed.
                if (System.nanoTime() > deadline || (p.exitValue() != 0 && !http.answers())) {
                    throw SandboxException.failed(
                            "the Airlock daemon exited (code " + p.exitValue() + "); see " + log());
                }
            }
            if (System.nanoTime() > deadline) {
                throw SandboxException.failed(
                        "the Airlock daemon did not start within " + START_LIMIT.toSeconds() + " s; see " + log());
            }
            try {
                // The socket appearing is the only signal another process gives; wait a little between looks.
                p.waitFor(20, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SandboxException("interrupted while starting the daemon", e);
            }
        }
    }
}
