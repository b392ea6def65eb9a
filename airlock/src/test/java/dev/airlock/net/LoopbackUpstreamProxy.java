package dev.airlock.net;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A corporate-style HTTP proxy on the host's loopback for tests: CONNECT tunnels and plain
 * {@code http://} requests in absolute form, Basic credentials required (407 without them), and
 * to loopback addresses only, so test traffic never leaves the machine. It records each target
 * ({@code ADDRESS:PORT}) it carried and each it refused.
 */
public final class LoopbackUpstreamProxy implements AutoCloseable {
    private final ServerSocket server;
    private final String authorization;
    /** CONNECT targets carried, in order. */
    public final List<String> carried = new CopyOnWriteArrayList<>();
    /** Targets refused for missing or wrong credentials. */
    public final List<String> refused = new CopyOnWriteArrayList<>();

    public LoopbackUpstreamProxy(String user, String password) throws IOException {
        this.authorization = "Basic "
                + java.util.Base64.getEncoder()
                        .encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        server = new ServerSocket(0, 64, InetAddress.getLoopbackAddress());
        Thread.ofVirtual().start(this::acceptLoop);
    }

    public int port() {
        return server.getLocalPort();
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread.ofVirtual().start(() -> serve(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket client) {
        try (client) {
            InputStream in = client.getInputStream();
            OutputStream out = client.getOutputStream();
            String head = readHead(in);
            String[] lines = head.split("\r\n");
            String[] request = lines[0].split(" ");
            String target = request.length > 1 ? request[1] : "";
            boolean authorized = false;
            for (String l : lines) {
                int colon = l.indexOf(':');
                if (colon > 0
                        && l.substring(0, colon).toLowerCase(Locale.ROOT).equals("proxy-authorization")
                        && l.substring(colon + 1).strip().equals(authorization)) {
                    authorized = true;
                }
            }
            if (!authorized) {
                refused.add(target);
                out.write(("HTTP/1.1 407 Proxy Authentication Required\r\n"
                                + "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                return;
            }
            if (!request[0].equals("CONNECT")) {
                forward(client, lines, request);
                return;
            }
            int colon = target.lastIndexOf(':');
            InetAddress address = InetAddress.ofLiteral(target.substring(0, colon));
            if (!address.isLoopbackAddress()) {
                refused.add(target);
                out.write("HTTP/1.1 403 Forbidden\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                return;
            }
            try (Socket upstream = new Socket(address, Integer.parseInt(target.substring(colon + 1)))) {
                carried.add(target);
                out.write("HTTP/1.1 200 Connection established\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                Thread down = Thread.ofVirtual().start(() -> {
                    try {
                        upstream.getInputStream().transferTo(out);
                        client.shutdownOutput();
                    } catch (IOException e) {
                        // the client went away
                    }
                });
                in.transferTo(upstream.getOutputStream());
                upstream.shutdownOutput();
                down.join();
            }
        } catch (IOException e) {
            // a test client that closed early
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * A plain request in absolute form: sent on to its origin with the proxy's own headers left
     * out and {@code Connection: close}, its answer relayed, then the client's connection closed.
     */
    private void forward(Socket client, String[] lines, String[] request) throws IOException, InterruptedException {
        URI uri = URI.create(request[1]);
        InetAddress address = InetAddress.ofLiteral(uri.getHost());
        int port = uri.getPort() < 0 ? 80 : uri.getPort();
        String target = uri.getHost() + ":" + port;
        OutputStream out = client.getOutputStream();
        if (!"http".equals(uri.getScheme()) || !address.isLoopbackAddress()) {
            refused.add(target);
            out.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            return;
        }
        try (Socket upstream = new Socket(address, port)) {
            carried.add(target);
            StringBuilder head = new StringBuilder()
                    .append(request[0])
                    .append(' ')
                    .append(uri.getRawPath())
                    .append(uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery())
                    .append(" HTTP/1.1\r\n");
            for (int i = 1; i < lines.length; i++) {
                String name = lines[i].substring(0, Math.max(0, lines[i].indexOf(':')))
                        .toLowerCase(Locale.ROOT);
                if (!name.isEmpty() && !name.startsWith("proxy-") && !name.equals("connection")) {
                    head.append(lines[i]).append("\r\n");
                }
            }
            head.append("Connection: close\r\n\r\n");
            upstream.getOutputStream().write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
            Thread down = Thread.ofVirtual().start(() -> {
                try {
                    upstream.getInputStream().transferTo(out);
                } catch (IOException e) {
                    // the client went away
                } finally {
                    try {
                        client.close();
                    } catch (IOException e) {
                        // closed already
                    }
                }
            });
            try {
                client.getInputStream().transferTo(upstream.getOutputStream());
            } catch (IOException e) {
                // closed once the answer was relayed
            }
            down.join();
        }
    }

    private static String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) >= 0 && b.size() < 16384) {
            b.write(c);
            byte[] a = b.toByteArray();
            int n = a.length;
            if (n >= 4 && a[n - 4] == '\r' && a[n - 3] == '\n' && a[n - 2] == '\r' && a[n - 1] == '\n') {
                break;
            }
        }
        return b.toString(StandardCharsets.ISO_8859_1);
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
