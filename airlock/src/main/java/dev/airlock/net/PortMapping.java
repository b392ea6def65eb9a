package dev.airlock.net;

import dev.airlock.sandbox.SandboxException;

/** {@code -p [HOSTIP:]HOSTPORT:GUESTPORT}: a host address forwarded to a guest loopback port. */
public record PortMapping(String hostIp, int hostPort, int guestPort) {
    public static PortMapping parse(String spec) {
        String[] parts = spec.split(":");
        try {
            return switch (parts.length) {
                case 2 -> new PortMapping("127.0.0.1", port(parts[0], spec), port(parts[1], spec));
                case 3 -> {
                    NetworkSpec.literal(parts[0]);
                    yield new PortMapping(parts[0], port(parts[1], spec), port(parts[2], spec));
                }
                default -> throw new NumberFormatException();
            };
        } catch (NumberFormatException | SandboxException e) {
            throw new SandboxException("port mapping '" + spec + "' is not [HOSTIP:]HOSTPORT:GUESTPORT, e.g. 8080:80"
                    + " or 127.0.0.1:8080:80");
        }
    }

    private static int port(String s, String spec) {
        int p = Integer.parseInt(s.trim());
        if (p < 1 || p > 65535) {
            throw new NumberFormatException(spec);
        }
        return p;
    }

    @Override
    public String toString() {
        return hostIp + ":" + hostPort + ":" + guestPort;
    }
}
