package dev.airlock.daemon;

import dev.airlock.api.BearerAuth;
import dev.airlock.api.HttpApi;
import dev.airlock.e2b.E2bServer;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.local.DaemonLog;
import dev.airlock.local.LocalSandboxService;
import dev.airlock.mcp.McpHttp;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.wire.Build;
import dev.airlock.wire.Health;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.function.Predicate;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.websocket.server.ServerWebSocketContainer;
import org.jspecify.annotations.Nullable;

/**
 * {@code airlockd}, where the parts meet: the backends of this host, the engine over them, the
 * local sandbox service, and the HTTP API on a unix socket in front of it; on TCP listeners
 * ({@code airlock serve --listen}) also MCP and the E2B endpoint ({@link ListenerRoutes}). One
 * daemon serves one data directory. It can be killed at any time: its state is a cache of what
 * is on disk and in the sandboxes' processes, and the next daemon re-attaches to the sandboxes
 * that kept running.
 */
public final class Daemon {
    /** In the runtime directory while a daemon also serves TCP: its addresses, one a line. */
    public static final String LISTEN_FILE = "airlockd.listen";

    /** The largest file E2B's {@code POST /files} takes on the daemon's listeners: {@code airlock e2b}'s default. */
    private static final long E2B_MAX_UPLOAD = 1L << 30;

    private final AirlockDirs dirs;
    private final LocalSandboxService service;
    private final List<InetSocketAddress> listen;
    private @Nullable Server server;
    private volatile @Nullable McpHttp mcp;
    private volatile @Nullable E2bServer e2b;
    private volatile Health health;

    public Daemon(AirlockDirs dirs) {
        this(dirs, List.of());
    }

    /**
     * A daemon that also serves the API on these TCP addresses (with the bearer token), besides
     * those in its config file ({@link DaemonConfig}).
     */
    public Daemon(AirlockDirs dirs, List<InetSocketAddress> listen) {
        this.dirs = dirs;
        DaemonConfig config = DaemonConfig.read(dirs.data());
        List<InetSocketAddress> all = new ArrayList<>(listen);
        for (String a : config.listen()) {
            InetSocketAddress address = TcpListen.parse(a, config.allowNonLoopback());
            if (!all.contains(address)) {
                all.add(address);
            }
        }
        this.listen = List.copyOf(all);
        this.health = new Health("1", ProcessHandle.current().pid(), dirs.data().toString(), Build.id(), List.of());
        HostBackends.Options options = HostBackends.Options.fromEnvironment();
        SandboxEngine engine =
                new SandboxEngine(dirs, HostBackends.forDaemon(dirs, DaemonLog::log, options), DaemonLog::log);
        this.service = new LocalSandboxService(dirs, engine, options.idlePause());
    }

    /** The socket the API is served on, for this data directory's runtime directory. */
    public static Path socket(AirlockDirs dirs) {
        return dirs.runtime().resolve("airlockd.sock");
    }

    /** Runs until killed. Exits at once if another daemon already serves this data directory. */
    public void run() throws Exception {
        AirlockDirs.ensurePrivateDir(dirs.runtime());
        // Sandbox disks, saved memory, logs, secrets: no other local user may read any of it.
        AirlockDirs.ensurePrivateDataDir(dirs.data());
        FileChannel lockChannel = FileChannel.open(
                dirs.runtime().resolve("airlockd.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock = lockChannel.tryLock();
        if (lock == null) {
            throw SandboxException.conflict(
                    "another airlockd already serves " + dirs.data() + " (socket " + socket(dirs) + ")");
        }
        HostFiles.writeAtomically(
                dirs.runtime().resolve("airlockd.pid"),
                (ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8));
        service.sweepRemovedNetworks();
        service.engine().sweepLeftovers();
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        Server srv = new Server(threads);
        UnixDomainServerConnector connector = new UnixDomainServerConnector(srv);
        Path sock = socket(dirs);
        Files.deleteIfExists(sock);
        connector.setUnixDomainPath(sock);
        // A session (an exec, a shell) can stay quiet for as long as its command runs.
        connector.setIdleTimeout(Duration.ofDays(1).toMillis());
        srv.addConnector(connector);
        List<ServerConnector> tcp = new ArrayList<>();
        for (InetSocketAddress address : listen) {
            ServerConnector c = new ServerConnector(srv);
            c.setHost(address.getAddress().getHostAddress());
            c.setPort(address.getPort());
            c.setIdleTimeout(Duration.ofDays(1).toMillis());
            srv.addConnector(c);
            tcp.add(c);
        }
        Handler api = new HttpApi(service, service, () -> health);
        Predicate<Request> onUnixSocket =
                request -> request.getConnectionMetaData().getConnector() == connector;
        if (!tcp.isEmpty()) {
            // The unix socket is its user's alone (0600 in a 0700 directory); TCP needs the token.
            String token = ApiToken.loadOrCreate(dirs.data());
            McpHttp mcpEndpoint = new McpHttp(service);
            mcp = mcpEndpoint;
            api = new ListenerRoutes(
                    new BearerAuth(api, token, onUnixSocket),
                    new BearerAuth(mcpEndpoint.handler(), token, onUnixSocket),
                    e2bEndpoint(token),
                    onUnixSocket);
        }
        // The unix socket's peers are checked by the kernel's account of who connected.
        api = new PeerCheck(api, onUnixSocket);
        srv.setHandler(api);
        ServerWebSocketContainer.ensure(srv);
        srv.start();
        Files.setPosixFilePermissions(sock, PosixFilePermissions.fromString("rw-------"));
        server = srv;
        List<String> bound = new ArrayList<>();
        for (ServerConnector c : tcp) {
            String host = c.getHost().contains(":") ? "[" + c.getHost() + "]" : c.getHost();
            bound.add(host + ":" + c.getLocalPort());
        }
        health = new Health("1", ProcessHandle.current().pid(), dirs.data().toString(), Build.id(), bound);
        Path listenFile = dirs.runtime().resolve(LISTEN_FILE);
        if (bound.isEmpty()) {
            Files.deleteIfExists(listenFile);
        } else {
            HostFiles.writeAtomically(listenFile, (String.join("\n", bound) + "\n").getBytes(StandardCharsets.UTF_8));
            DaemonLog.log("serving the API on http://" + String.join(", http://", bound) + " (bearer token in "
                    + ApiToken.file(dirs.data()) + "), MCP at " + ListenerRoutes.MCP_PATH
                    + (e2b != null ? ", E2B (E2B_API_URL=E2B_SANDBOX_URL=that URL, E2B_API_KEY=the token)" : ""));
        }
        // Serve first, then re-attach: a sandbox whose guest does not answer must not keep
        // every command waiting.
        service.reattachRunning();
        service.startWatchdog();
        DaemonLog.log("serving " + dirs.data() + " on " + sock + " (pid "
                + ProcessHandle.current().pid() + ")");
        srv.join();
        lock.release();
    }

    /**
     * E2B's control plane and envd for the TCP listeners, with the daemon's token as its API key;
     * a stand-in that says why when another E2B endpoint owns this data directory's E2B records.
     */
    private Handler e2bEndpoint(String token) {
        try {
            E2bServer endpoint = new E2bServer(service, dirs.data(), dirs.runtime(), token, null, E2B_MAX_UPLOAD);
            e2b = endpoint;
            return endpoint;
        } catch (SandboxException | UncheckedIOException e) {
            DaemonLog.log("E2B is not served on the TCP listeners: " + e.getMessage());
            return new ListenerRoutes.Unavailable(String.valueOf(e.getMessage()));
        }
    }

    public void shutdown() {
        Server srv = server;
        if (srv != null) {
            try {
                srv.stop();
            } catch (Exception e) {
                DaemonLog.log("stop failed: " + e.getMessage());
            }
        }
        McpHttp m = mcp;
        if (m != null) {
            m.close();
        }
        E2bServer x = e2b;
        if (x != null) {
            x.close();
        }
        service.close();
        HostFiles.deleteTree(socket(dirs));
        HostFiles.deleteTree(dirs.runtime().resolve(LISTEN_FILE));
    }
}
