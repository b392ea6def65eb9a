package dev.airlock.api;

import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.ProcessExit;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxStats;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.eclipse.jetty.client.ContentResponse;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.StringRequestContent;
import org.eclipse.jetty.http.HttpMethod;
import org.eclipse.jetty.io.Transport;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.type.TypeReference;

/**
 * The CLI's way to the daemon: the HTTP/JSON API over the daemon's unix socket, starting the
 * daemon first when none is running. Errors come back as the same {@link SandboxException}s the
 * engine throws, so the CLI prints the same message either way.
 */
public final class DaemonClient implements AutoCloseable {
    private static final Duration START_LIMIT = Duration.ofSeconds(30);

    private final AirlockDirs dirs;
    private final Path socket;
    private final HttpClient http;

    private DaemonClient(AirlockDirs dirs) {
        this.dirs = dirs;
        this.socket = Daemon.socket(dirs);
        this.http = new HttpClient();
        http.setFollowRedirects(false);
        try {
            http.start();
        } catch (Exception e) {
            throw new SandboxException("cannot start the HTTP client: " + e.getMessage(), e);
        }
    }

    /** Connects to this data directory's daemon, starting one if none answers. */
    public static DaemonClient connect(AirlockDirs dirs) {
        if (!answers(Daemon.socket(dirs))) {
            spawn(dirs);
            return new DaemonClient(dirs);
        }
        DaemonClient client = new DaemonClient(dirs);
        @Nullable
        String theirs = ApiHandler.JSON
                .readValue(client.call(HttpMethod.GET, "/v1/health", null), ApiTypes.Health.class)
                .build();
        if (!Daemon.build().equals(theirs)) {
            // A daemon from an older build of Airlock: replace it. Sandboxes keep running; the
            // new daemon re-attaches to them.
            client.close();
            replace(dirs, String.valueOf(theirs));
            client = new DaemonClient(dirs);
        }
        return client;
    }

    private static void replace(AirlockDirs dirs, String oldBuild) {
        try {
            long pid =
                    Long.parseLong(java.nio.file.Files.readString(dirs.runtime().resolve("airlockd.pid"))
                            .strip());
            ProcessHandle.of(pid).ifPresent(p -> {
                p.destroy();
                if (!ProcessExit.await(p.pid(), Duration.ofSeconds(10))) {
                    p.destroyForcibly();
                }
            });
        } catch (IOException | NumberFormatException e) {
            throw new SandboxException(
                    SandboxException.Kind.FAILED,
                    "a daemon of another Airlock build (" + oldBuild + ") serves " + dirs.data()
                            + " and its pid file is unreadable; stop it and retry");
        }
        spawn(dirs);
    }

    static boolean answers(Path socket) {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static void spawn(AirlockDirs dirs) {
        AirlockDirs.ensureDir(dirs.data());
        AirlockDirs.ensureDir(dirs.runtime());
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
                .redirectOutput(ProcessBuilder.Redirect.appendTo(
                        dirs.data().resolve("airlockd.log").toFile()))
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
        while (!answers(Daemon.socket(dirs))) {
            if (!p.isAlive() && !answers(Daemon.socket(dirs))) {
                // It may have lost a start race to another daemon, which then answers; otherwise it failed.
                if (System.nanoTime() > deadline || p.exitValue() != 0 && !answers(Daemon.socket(dirs))) {
                    throw new SandboxException(
                            SandboxException.Kind.FAILED,
                            "the Airlock daemon exited (code " + p.exitValue() + "); see "
                                    + dirs.data().resolve("airlockd.log"));
                }
            }
            if (System.nanoTime() > deadline) {
                throw new SandboxException(
                        SandboxException.Kind.FAILED,
                        "the Airlock daemon did not start within " + START_LIMIT.toSeconds() + " s; see "
                                + dirs.data().resolve("airlockd.log"));
            }
            try {
                // The socket appearing is the only signal another process gives; wait a little between looks.
                p.onExit().get(20, TimeUnit.MILLISECONDS);
            } catch (TimeoutException | ExecutionException e) {
                // Still starting (or exited: checked above).
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SandboxException("interrupted while starting the daemon", e);
            }
        }
    }

    public List<Sandbox> list() {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.GET, "/v1/sandboxes", null), new TypeReference<List<Sandbox>>() {});
    }

    public Sandbox create(ApiTypes.CreateRequest request) {
        return sandbox(call(HttpMethod.POST, "/v1/sandboxes", ApiHandler.JSON.writeValueAsString(request)));
    }

    public Sandbox inspect(String ref) {
        return sandbox(call(HttpMethod.GET, "/v1/sandboxes/" + ref, null));
    }

    public Sandbox start(String ref) {
        return sandbox(call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/start", ""));
    }

    public Sandbox stop(String ref, int seconds) {
        return sandbox(call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/stop?timeout=" + seconds, ""));
    }

    public Sandbox pause(String ref) {
        return sandbox(call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/pause", ""));
    }

    public Sandbox resume(String ref) {
        return sandbox(call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/resume", ""));
    }

    public List<Sandbox> fork(String ref, ApiTypes.ForkRequest request) {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/fork", ApiHandler.JSON.writeValueAsString(request)),
                new TypeReference<List<Sandbox>>() {});
    }

    public Sandbox kill(String ref) {
        return sandbox(call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/kill", ""));
    }

    public Sandbox remove(String ref, boolean force) {
        return sandbox(call(HttpMethod.DELETE, "/v1/sandboxes/" + ref + (force ? "?force=true" : ""), null));
    }

    public SandboxStats stats(String ref) {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.GET, "/v1/sandboxes/" + ref + "/stats", null), SandboxStats.class);
    }

    public String logs(String ref) {
        return call(HttpMethod.GET, "/v1/sandboxes/" + ref + "/logs", null);
    }

    /** The sandbox's network settings (mode, allowlist, pins, ports). */
    public dev.airlock.net.NetworkSpec network(String ref) {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.GET, "/v1/sandboxes/" + ref + "/network", null), dev.airlock.net.NetworkSpec.class);
    }

    /** Replaces the egress allowlist and pins; a running sandbox's proxy applies them to new connections. */
    public dev.airlock.net.NetworkSpec updatePolicy(String ref, List<String> allowHosts, List<String> addHosts) {
        return ApiHandler.JSON.readValue(
                call(
                        HttpMethod.PUT,
                        "/v1/sandboxes/" + ref + "/network",
                        ApiHandler.JSON.writeValueAsString(new ApiTypes.PolicyRequest(allowHosts, addHosts))),
                dev.airlock.net.NetworkSpec.class);
    }

    public dev.airlock.net.NetworkSpec addPort(String ref, String mapping) {
        return ApiHandler.JSON.readValue(
                call(
                        HttpMethod.POST,
                        "/v1/sandboxes/" + ref + "/ports",
                        ApiHandler.JSON.writeValueAsString(new ApiTypes.PortRequest(mapping))),
                dev.airlock.net.NetworkSpec.class);
    }

    public dev.airlock.net.NetworkSpec removePort(String ref, int hostPort) {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.DELETE, "/v1/sandboxes/" + ref + "/ports/" + hostPort, null),
                dev.airlock.net.NetworkSpec.class);
    }

    /** Inference bridge usage of a running sandbox; NOT_FOUND when it has none. */
    public dev.airlock.net.InferenceBridge.Usage inferenceUsage(String ref) {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.GET, "/v1/sandboxes/" + ref + "/inference", null),
                dev.airlock.net.InferenceBridge.Usage.class);
    }

    /** The egress log: one line per decision of the sandbox's proxy. */
    public String egressLog(String ref) {
        return call(HttpMethod.GET, "/v1/sandboxes/" + ref + "/egress", null);
    }

    public ApiTypes.ExecResult exec(String ref, ApiTypes.ExecRequest request) {
        return ApiHandler.JSON.readValue(
                call(HttpMethod.POST, "/v1/sandboxes/" + ref + "/exec", ApiHandler.JSON.writeValueAsString(request)),
                ApiTypes.ExecResult.class);
    }

    /** A guest-protocol session to a running sandbox, through the daemon's shared agent socket. */
    public GuestChannel openAgent(String ref) throws IOException {
        ApiTypes.AgentEndpoint ep = ApiHandler.JSON.readValue(
                call(HttpMethod.GET, "/v1/sandboxes/" + ref + "/agent", null), ApiTypes.AgentEndpoint.class);
        return GuestChannel.connect(Path.of(ep.socket()), Duration.ofSeconds(30));
    }

    public AirlockDirs dirs() {
        return dirs;
    }

    private static Sandbox sandbox(String json) {
        return ApiHandler.JSON.readValue(json, Sandbox.class);
    }

    private String call(HttpMethod method, String path, @Nullable String body) {
        ContentResponse r;
        try {
            var req = http.newRequest("http://localhost" + path)
                    .transport(new Transport.TCPUnix(socket))
                    .method(method)
                    .timeout(30, TimeUnit.MINUTES);
            if (body != null) {
                req.body(new StringRequestContent("application/json", body, StandardCharsets.UTF_8));
            }
            r = req.send();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted", e);
        } catch (TimeoutException | ExecutionException e) {
            throw new SandboxException(
                    SandboxException.Kind.FAILED,
                    "the Airlock daemon did not answer " + method + " " + path + ": " + e.getMessage() + "; see "
                            + dirs.data().resolve("airlockd.log"));
        }
        String text = r.getContentAsString();
        if (r.getStatus() / 100 != 2) {
            ApiTypes.Error err;
            try {
                err = ApiHandler.JSON.readValue(text, ApiTypes.Error.class);
            } catch (RuntimeException e) {
                throw new SandboxException(
                        SandboxException.Kind.FAILED, "the daemon answered " + r.getStatus() + ": " + text);
            }
            throw new SandboxException(SandboxException.Kind.valueOf(err.kind()), err.error());
        }
        return text;
    }

    @Override
    public void close() {
        try {
            http.stop();
        } catch (Exception e) {
            // The client's threads are daemon threads; nothing else to release.
        }
    }
}
