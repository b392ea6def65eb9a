package dev.airlock.net;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.Semaphore;
import java.util.function.Consumer;

/**
 * Takes the TCP connections made to one listening socket on the host (a published port, the nat
 * relay) and hands each to a handler on a virtual thread of its own; at most {@code
 * maxConnections} are served at once, the rest get {@code busy}. The host's counterpart of {@link
 * GuestPortListener}. Closing it closes the socket, which ends the accepting.
 */
final class HostPortListener implements AutoCloseable {
    private final String name;
    private final ServerSocket server;
    private final Semaphore connections;
    private final Consumer<Socket> serve;
    private final Consumer<Socket> busy;

    /**
     * @param name what the listener serves and for which sandbox, for thread names
     * @param server a bound socket, the listener's from now on
     * @param serve serves one connection (and closes it)
     * @param busy answers a connection over the cap (and closes it); it runs on the accepting
     *     thread, so it must not wait for the peer
     */
    HostPortListener(
            String name, ServerSocket server, int maxConnections, Consumer<Socket> serve, Consumer<Socket> busy) {
        this.name = name;
        this.server = server;
        this.connections = new Semaphore(maxConnections);
        this.serve = serve;
        this.busy = busy;
    }

    void start() {
        Thread.ofVirtual().name(name + "-accept").start(this::acceptLoop);
    }

    int port() {
        return server.getLocalPort();
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            Socket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            if (!connections.tryAcquire()) {
                busy.accept(s);
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
    }

    @Override
    public void close() {
        try {
            server.close();
        } catch (IOException e) {
            // already closed
        }
    }
}
