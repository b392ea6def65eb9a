package dev.airlock.cli;

import dev.airlock.sandbox.SandboxException;

/** A {@code HOST:PORT} to listen on, as {@code --listen} gives it; a bare port means loopback. */
record Listen(String host, int port) {
    static Listen parse(String value, String option) {
        String host = "127.0.0.1";
        String port = value;
        int colon = value.lastIndexOf(':');
        if (colon >= 0) {
            host = value.substring(0, colon);
            port = value.substring(colon + 1);
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
        }
        if (host.isEmpty() || !port.matches("\\d{1,5}") || Integer.parseInt(port) > 65535) {
            throw new SandboxException(
                    option + " takes HOST:PORT (e.g. 127.0.0.1:3000) or a port, not '" + value + "'");
        }
        return new Listen(host, Integer.parseInt(port));
    }
}
