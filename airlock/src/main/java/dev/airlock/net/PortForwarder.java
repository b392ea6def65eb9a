package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestSocket;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;

/**
 * One published port: listens on the host address and carries each connection over the agent
 * channel to {@code 127.0.0.1:GUESTPORT} inside the sandbox, so it works without any network
 * device in the guest.
 */
public final class PortForwarder implements AutoCloseable {
    /** The agent session to open guest connections on; reopened by the owner when it ends. */
    public interface Channels {
        GuestChannel channel() throws IOException, InterruptedException;
    }

    /** How long the agent may take to connect to the guest port (a hostile one may never answer). */
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);

    /** Connections carried at once per published port; more are closed (each holds a guest stream). */
    static final int MAX_CONNECTIONS = 128;

    private final String sandbox;
    private final PortMapping mapping;
    private final Channels channels;
    private final HostPortListener listener;

    public PortForwarder(String sandbox, PortMapping mapping, Channels channels) throws IOException {
        this.sandbox = sandbox;
        this.mapping = mapping;
        this.channels = channels;
        ServerSocket s = new ServerSocket();
        try {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.ofLiteral(mapping.hostIp()), mapping.hostPort()), 64);
        } catch (IOException e) {
            s.close();
            throw new IOException(
                    "cannot publish " + mapping.hostIp() + ":" + mapping.hostPort() + ": " + e.getMessage(), e);
        }
        this.listener = new HostPortListener(
                "port-" + sandbox + "-" + mapping.hostPort(), s, MAX_CONNECTIONS, this::carry, this::busy);
        listener.start();
    }

    public PortMapping mapping() {
        return mapping;
    }

    /** A connection over the cap: closed, as if nothing listened in the guest. */
    private void busy(Socket client) {
        System.err.println("airlockd: sandbox " + sandbox + ": port " + mapping + ": more than " + MAX_CONNECTIONS
                + " connections at once; one closed");
        try {
            client.close();
        } catch (IOException e) {
            // closed anyway
        }
    }

    private void carry(Socket client) {
        try (client) {
            GuestSocket guest;
            try {
                guest = channels.channel().connect(mapping.guestPort(), CONNECT_TIMEOUT);
            } catch (IOException e) {
                // Nothing listens in the guest (yet): the client sees the connection close, as
                // with docker -p to a port no process serves.
                System.err.println("airlockd: sandbox " + sandbox + ": port " + mapping + ": " + e.getMessage());
                return;
            }
            try (guest) {
                Thread up = Thread.ofVirtual().start(() -> {
                    try {
                        client.getInputStream().transferTo(guest.output());
                        guest.output().close();
                    } catch (IOException e) {
                        guest.close();
                    }
                });
                try {
                    guest.input().transferTo(client.getOutputStream());
                    client.shutdownOutput();
                } catch (IOException e) {
                    client.close();
                }
                up.join();
            }
        } catch (IOException e) {
            // The client went away.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        listener.close();
    }
}
