package dev.airlock.e2b;

import dev.airlock.host.TokenFile;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.SandboxService;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Executors;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.jspecify.annotations.Nullable;

/**
 * An E2B-compatible endpoint: E2B's control plane and its in-sandbox API (envd) on one port, so
 * the unchanged {@code e2b} SDK works with {@code E2B_API_URL} and {@code E2B_SANDBOX_URL} both
 * set to it. A request carrying {@code E2b-Sandbox-Id} (the SDK adds it when
 * {@code E2B_SANDBOX_URL} is set) goes to that sandbox's envd; anything else is the control
 * plane, which wants the API key in {@code X-API-KEY}. envd requests must carry the sandbox's
 * {@code X-Access-Token}.
 *
 * <p>A front end: it sees the sandbox service only, here the daemon's, through its client.
 */
public final class E2bServer extends Handler.Abstract implements AutoCloseable {
    /** The port envd listens on inside an E2B sandbox; the SDK names it in {@code E2b-Sandbox-Port}. */
    static final int ENVD_PORT = 49983;

    private final String apiKey;
    private final E2bSandboxes sandboxes;
    private final ControlPlane control;
    private final ProcessRpc processes;
    private final FilesystemRpc filesystem;
    private final EnvdFiles files;

    /**
     * @param apiKey what clients must send in {@code X-API-KEY}
     * @param runtime the runtime of new sandboxes, or null for the host's default
     * @param maxUpload the largest file {@code POST /files} takes
     */
    public E2bServer(
            SandboxService service,
            Path dataDir,
            Path runtimeDir,
            String apiKey,
            @Nullable String runtime,
            long maxUpload) {
        this.apiKey = apiKey;
        this.sandboxes = new E2bSandboxes(service, dataDir, Clock.systemUTC());
        this.control = new ControlPlane(sandboxes, runtime);
        this.processes = new ProcessRpc(sandboxes);
        this.filesystem = new FilesystemRpc(sandboxes);
        this.files = new EnvdFiles(sandboxes, maxUpload, runtimeDir);
    }

    /** Serves the endpoint alone on {@code host:port}. */
    public static Server listen(E2bServer endpoint, String host, int port) throws Exception {
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        Server jetty = new Server(threads);
        ServerConnector connector = new ServerConnector(jetty);
        connector.setHost(host);
        connector.setPort(port);
        // A command's output stream can stay quiet between keepalives; those come at least every 30 s.
        connector.setIdleTimeout(Duration.ofMinutes(10).toMillis());
        jetty.addConnector(connector);
        jetty.setHandler(endpoint);
        jetty.addBean(endpoint);
        jetty.start();
        return jetty;
    }

    static boolean isEnvdPath(String path) {
        return path.equals("/health")
                || path.equals("/files")
                || path.equals("/envs")
                || ProcessRpc.handles(path)
                || FilesystemRpc.handles(path);
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        Exchange ex = new Exchange(request, response, callback);
        String path = ex.path();
        boolean rpc = ProcessRpc.handles(path) || FilesystemRpc.handles(path);
        try {
            String sandboxId = ex.header("E2b-Sandbox-Id");
            if (sandboxId != null || isEnvdPath(path)) {
                envd(ex, sandboxId);
            } else {
                if (!TokenFile.matches(apiKey, ex.header("X-API-KEY"))) {
                    throw new E2bException(
                            401,
                            "invalid or missing API key: send the key of this endpoint in"
                                    + " X-API-KEY (E2B_API_KEY for the SDK)");
                }
                control.handle(ex);
            }
        } catch (IOException | RuntimeException e) {
            fail(ex, rpc, Rpc.error(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail(ex, rpc, new E2bException(500, "interrupted"));
        }
        return true;
    }

    private static void fail(Exchange ex, boolean rpc, E2bException e) {
        if (e.status() >= 500 && e.status() != 502 && e.status() != 503) {
            // Not the client's doing: keep the cause for whoever reads the endpoint's log.
            System.err.println("airlock e2b: " + ex.method() + " " + ex.path() + " failed:");
            (e.getCause() != null ? e.getCause() : e).printStackTrace();
        }
        if (ex.answered()) {
            ex.complete(e);
        } else if (rpc) {
            ConnectRpc.unaryError(ex, e);
        } else {
            ex.error(e.status(), String.valueOf(e.getMessage()));
        }
    }

    private void envd(Exchange ex, @Nullable String sandboxId) throws IOException, InterruptedException {
        if (sandboxId == null) {
            throw E2bException.badRequest(ex.path() + " is a sandbox route: send E2b-Sandbox-Id (the SDK does when"
                    + " E2B_SANDBOX_URL is set to this endpoint)");
        }
        String port = ex.header("E2b-Sandbox-Port");
        if (port != null && !port.equals(Integer.toString(ENVD_PORT))) {
            throw new E2bException(
                    502,
                    "port " + port + " of sandbox " + sandboxId + " is not served by this"
                            + " endpoint (only envd, port " + ENVD_PORT + ")");
        }
        E2bSandbox sandbox = sandboxes.get(sandboxId);
        if (sandbox == null) {
            throw new E2bException(502, "sandbox '" + sandboxId + "' not found (killed, timed out, or never made)");
        }
        String path = ex.path();
        if (path.equals("/health")) {
            SandboxState state = sandboxes.service().inspect(sandboxId).state();
            if (state != SandboxState.RUNNING) {
                throw new E2bException(
                        502, "sandbox '" + sandboxId + "' is " + state.name().toLowerCase(java.util.Locale.ROOT));
            }
            ex.empty(204);
            return;
        }
        if (!TokenFile.matches(sandbox.accessToken(), ex.header("X-Access-Token"))) {
            throw new E2bException(401, "missing or wrong X-Access-Token for sandbox '" + sandboxId + "'");
        }
        if (ProcessRpc.handles(path)) {
            processes.handle(ex, sandbox, E2bUser.ofAuthorization(ex.header("Authorization")));
        } else if (FilesystemRpc.handles(path)) {
            filesystem.handle(ex, sandbox, E2bUser.ofAuthorization(ex.header("Authorization")));
        } else if (path.equals("/files")) {
            files.handle(ex, sandbox);
        } else if (path.equals("/envs")) {
            ex.json(200, sandbox.envs());
        } else {
            throw E2bException.notFound("no envd route " + path);
        }
    }

    @Override
    public void close() {
        sandboxes.close();
    }
}
