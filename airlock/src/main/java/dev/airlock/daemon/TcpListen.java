package dev.airlock.daemon;

import dev.airlock.sandbox.SandboxException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/**
 * A TCP address to serve the API on, {@code HOST:PORT} ({@code [::1]:PORT} for IPv6). Loopback
 * only unless asked otherwise in so many words: the API gives whoever holds the token every
 * sandbox, over plain HTTP.
 */
public final class TcpListen {
    private TcpListen() {}

    public static InetSocketAddress parse(String hostPort, boolean allowNonLoopback) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            throw new SandboxException("--listen '" + hostPort + "' is not HOST:PORT, e.g. 127.0.0.1:7070");
        }
        String host = hostPort.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 0 || port > 65535) {
            throw new SandboxException("--listen '" + hostPort + "': the port must be 0 to 65535");
        }
        InetAddress address;
        try {
            address = InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new SandboxException("--listen '" + hostPort + "': unknown host '" + host + "'");
        }
        if (!address.isLoopbackAddress() && !allowNonLoopback) {
            throw new SandboxException("refusing to serve the API on " + hostPort + ": " + address.getHostAddress()
                    + " is not a loopback address, and whoever reaches it with the token controls every sandbox"
                    + " over plain HTTP; use 127.0.0.1, or pass --allow-non-loopback to do it anyway");
        }
        return new InetSocketAddress(address, port);
    }
}
