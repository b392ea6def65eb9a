package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import dev.airlock.guest.GuestSocket;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;

/**
 * Takes the connections guest processes make to one port on the guest's loopback (the egress
 * proxy's, the inference bridge's) through the sandbox's agent, and hands each to a handler on a
 * thread of its own. Several ACCEPT streams stay parked so a connection is handed over without a
 * round trip; at most {@code maxConnections} are served at once, the rest get {@code busy}. The
 * agent session can end under it (a daemon restart, a reconnect of the virtio port, a protocol
 * error): the listener then takes a new one, so the sandbox's proxy does not go quiet for good.
 */
final class GuestPortListener implements AutoCloseable {
    private static final int RECONNECT_ATTEMPTS = 30;

    private final String name;
    private final Path agentSocket;
    private final int port;
    private final int acceptors;
    private final int maxConnections;
    private final Semaphore connections;
    private final Consumer<GuestSocket> serve;
    private final Consumer<GuestSocket> busy;
    private volatile @Nullable GuestChannel channel;
    private volatile boolean closed;

    /**
     * @param name what the listener serves and for which sandbox, for thread names and the log
     * @param serve serves one connection (and closes it)
     * @param busy answers a connection over the cap (and closes it)
     */
    GuestPortListener(
            String name,
            Path agentSocket,
            int port,
            int acceptors,
            int maxConnections,
            Consumer<GuestSocket> serve,
            Consumer<GuestSocket> busy) {
        this.name = name;
        this.agentSocket = agentSocket;
        this.port = port;
        this.acceptors = acceptors;
        this.maxConnections = maxConnections;
        this.connections = new Semaphore(maxConnections);
        this.serve = serve;
        this.busy = busy;
    }

    /** Connections being served now (tests wait for a cap's connections to be let go). */
    int connectionsInUse() {
        return maxConnections - connections.availablePermits();
    }

    /** Connects to the agent and parks the ACCEPT streams. */
    void start() throws IOException {
        GuestChannel ch = GuestChannel.connect(agentSocket, Duration.ofSeconds(30));
        channel = ch;
        for (int i = 0; i < acceptors; i++) {
            Thread.ofVirtual().name(name + "-accept").start(() -> acceptLoop(ch));
        }
    }

    private void acceptLoop(GuestChannel ch) {
        while (!closed && ch.isOpen()) {
            GuestSocket s;
            try {
                s = ch.accept(port);
            } catch (GuestException e) {
                // The agent refused this ACCEPT (all streams of its session in use, say): the
                // session is fine and its other connections with it; wait and ask again.
                if (!backOff()) {
                    return;
                }
                continue;
            } catch (IOException e) {
                if (!closed && ch.isOpen()) {
                    System.err.println("airlockd: " + name + ": " + e.getMessage() + "; taking a new agent session");
                }
                break;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (!connections.tryAcquire()) {
                Thread.ofVirtual().name(name + "-busy").start(() -> busy.accept(s));
                continue;
            }
            Thread.ofVirtual().name(name).start(() -> {
                try {
                    serve.accept(s);
                } finally {
                    connections.release();
                }
            });
        }
        reconnect(ch);
    }

    /** A pause between attempts after a refusal (not synchronisation); false when interrupted. */
    static boolean backOff() {
        try {
            Thread.sleep(Duration.ofSeconds(1));
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The first acceptor to see its session end takes a new one; the others find it taken. */
    private synchronized void reconnect(GuestChannel dead) {
        if (closed || channel != dead) {
            return;
        }
        dead.close();
        channel = null;
        for (int attempt = 0; attempt < RECONNECT_ATTEMPTS && !closed; attempt++) {
            try {
                start();
                return;
            } catch (IOException e) {
                if (!backOff()) {
                    return;
                }
            }
        }
        if (!closed) {
            System.err.println("airlockd: " + name + ": no agent session after " + RECONNECT_ATTEMPTS
                    + " attempts; guest connections to port " + port + " wait until the sandbox restarts");
        }
    }

    @Override
    public void close() {
        closed = true;
        GuestChannel ch = channel;
        if (ch != null) {
            ch.close();
        }
    }
}
