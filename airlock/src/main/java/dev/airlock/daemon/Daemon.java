package dev.airlock.daemon;

import dev.airlock.api.HttpApi;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.local.DaemonLog;
import dev.airlock.local.LocalSandboxService;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.wire.Build;
import dev.airlock.wire.Health;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.Executors;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.jspecify.annotations.Nullable;

/**
 * {@code airlockd}, where the parts meet: the backends of this host, the engine over them, the
 * local sandbox service, and the HTTP API on a unix socket in front of it. One daemon serves one
 * data directory. It can be killed at any time: its state is a cache of what is on disk and in
 * the sandboxes' processes, and the next daemon re-attaches to the sandboxes that kept running.
 */
public final class Daemon {
    private final AirlockDirs dirs;
    private final LocalSandboxService service;
    private @Nullable Server server;

    public Daemon(AirlockDirs dirs) {
        this.dirs = dirs;
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
        srv.setHandler(new PeerCheck(new HttpApi(
                service,
                service,
                new Health("1", ProcessHandle.current().pid(), dirs.data().toString(), Build.id()))));
        srv.start();
        Files.setPosixFilePermissions(sock, PosixFilePermissions.fromString("rw-------"));
        server = srv;
        // Serve first, then re-attach: a sandbox whose guest does not answer must not keep
        // every command waiting.
        service.reattachRunning();
        service.startWatchdog();
        DaemonLog.log("serving " + dirs.data() + " on " + sock + " (pid "
                + ProcessHandle.current().pid() + ")");
        srv.join();
        lock.release();
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
        service.close();
        HostFiles.deleteTree(socket(dirs));
    }
}
