package dev.airlock.guest;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The real agent, built by Maven, running as a subprocess that serves one unix socket. Its "guest
 * loopback" is the host's, and it serves one session at a time. Public for the network tests,
 * which run the egress proxy and the inference bridge against it.
 */
public final class AgentProcess implements AutoCloseable {
    private static final Duration STARTUP = Duration.ofSeconds(10);

    private final Process process;
    private final Path socket;
    private final Path log;

    private AgentProcess(Process process, Path socket, Path log) {
        this.process = process;
        this.socket = socket;
        this.log = log;
    }

    /** The agent Maven built, or the one named by {@code AIRLOCK_AGENT=PATH} (to try a fix). */
    static Path binary() {
        String override = System.getenv("AIRLOCK_AGENT");
        if (override != null && !override.isBlank()) {
            return Path.of(override);
        }
        URL url = GuestChannel.class.getResource("bin/airlock-init");
        if (url == null) {
            throw new IllegalStateException("airlock-init is not on the class path; build with ./mvnw verify");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Starts the agent and returns once its socket exists. */
    public static AgentProcess start(Path dir) throws IOException, InterruptedException {
        Path socket = dir.resolve("agent.sock");
        Path log = dir.resolve("agent.log");
        try (WatchService watch = dir.getFileSystem().newWatchService()) {
            dir.register(watch, StandardWatchEventKinds.ENTRY_CREATE);
            Process process = new ProcessBuilder(binary().toString(), "--serve-unix", socket.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            long deadline = System.nanoTime() + STARTUP.toNanos();
            while (!Files.exists(socket)) {
                if (!process.isAlive() || System.nanoTime() > deadline) {
                    process.destroyForcibly();
                    throw new IOException("agent did not create its socket: " + Files.readString(log));
                }
                var key = watch.poll(100, TimeUnit.MILLISECONDS);
                if (key != null) {
                    key.pollEvents();
                    key.reset();
                }
            }
            AgentProcess agent = new AgentProcess(process, socket, log);
            // The socket file exists from bind(2) on; a caller that connects on its own (a
            // bridge, a proxy) must not meet the refusals before listen(2).
            agent.connect().close();
            return agent;
        }
    }

    public Path socket() {
        return socket;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public String log() throws IOException {
        return Files.readString(log);
    }

    /**
     * Connects, retrying only the refusals between the agent's bind(2) and listen(2); the agent
     * takes one session at a time, so a connection also waits while an earlier one winds down.
     */
    SocketChannel connect() throws IOException {
        long deadline = System.nanoTime() + STARTUP.toNanos();
        while (true) {
            try {
                return SocketChannel.open(UnixDomainSocketAddress.of(socket));
            } catch (ConnectException e) {
                if (System.nanoTime() > deadline || !process.isAlive()) {
                    throw e;
                }
                Thread.yield();
            }
        }
    }

    public GuestChannel open() throws IOException, InterruptedException {
        return GuestChannel.open(connect(), Duration.ofSeconds(10));
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor();
        }
    }
}
