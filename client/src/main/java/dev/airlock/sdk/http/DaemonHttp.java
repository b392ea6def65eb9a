package dev.airlock.sdk.http;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Just enough HTTP/1.1 for the daemon's API, over a unix socket or TCP: one request per
 * connection, fixed or chunked bodies both ways, and full-duplex exchanges (a session, a streamed
 * exec) whose request body is still being written while the answer is read. Small on purpose:
 * the SDK carries no HTTP library, and a CLI command that makes one call must not pay for one's
 * start-up. The daemon's answer is read with bounds (head size, line lengths, chunk sizes), so a
 * broken one cannot make the client read forever.
 */
public final class DaemonHttp {
    private static final int MAX_HEAD = 64 << 10;

    private final SocketAddress address;
    private final String headers;

    /**
     * @param address the daemon's unix socket ({@code UnixDomainSocketAddress}) or TCP address
     * @param host the Host header's value
     * @param extraHeaders sent with every request (a token, the client's build), in this order
     */
    public DaemonHttp(SocketAddress address, String host, Map<String, String> extraHeaders) {
        this.address = address;
        StringBuilder h = new StringBuilder("Host: ").append(host).append("\r\nConnection: close\r\n");
        for (Map.Entry<String, String> e : extraHeaders.entrySet()) {
            if (!printable(e.getKey()) || !printable(e.getValue())) {
                throw new IllegalArgumentException("a header must be one line of printable text: " + e.getKey());
            }
            h.append(e.getKey()).append(": ").append(e.getValue()).append("\r\n");
        }
        this.headers = h.toString();
    }

    /** One line of printable ASCII: a token or build id with a line break would smuggle a header in. */
    private static boolean printable(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c >= 0x7f) {
                return false;
            }
        }
        return true;
    }

    /** A response: its status, headers (lower-case names) and body stream (closing it closes the connection). */
    public record Response(int status, Map<String, String> headers, InputStream body) implements AutoCloseable {
        /** The whole body; more than {@code max} bytes is an error. */
        public byte[] readAll(int max) throws IOException {
            byte[] b = body.readNBytes(max + 1);
            if (b.length > max) {
                throw new IOException("the daemon's answer is larger than " + (max >> 20) + " MiB");
            }
            return b;
        }

        @Override
        public void close() throws IOException {
            body.close();
        }
    }

    /**
     * A request whose body is still being written while its response is read. Closing the request
     * body ends it (the last chunk); closing the response's body closes the connection.
     */
    public record Exchange(OutputStream requestBody, Response response) {}

    /** Nothing listens at the address: nothing was sent, so the call may be made again. */
    public static final class Unreachable extends IOException {
        private static final long serialVersionUID = 1L;

        Unreachable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Sends a request with a whole body (or none) and returns the response, whose body is still to be read. */
    public Response send(String method, String path, byte @Nullable [] body, String contentType) throws IOException {
        SocketChannel ch = connect();
        try {
            StringBuilder head = head(method, path);
            if (body != null) {
                head.append("Content-Type: ")
                        .append(contentType)
                        .append("\r\nContent-Length: ")
                        .append(body.length)
                        .append("\r\n");
            } else if (!method.equals("GET") && !method.equals("DELETE")) {
                head.append("Content-Length: 0\r\n");
            }
            head.append("\r\n");
            byte[] h = head.toString().getBytes(StandardCharsets.ISO_8859_1);
            // One write for a small request: the daemon reads it whole, at once.
            ByteBuffer request = ByteBuffer.allocate(h.length + (body == null ? 0 : body.length));
            request.put(h);
            if (body != null) {
                request.put(body);
            }
            writeFully(ch, request.flip());
            return readResponse(ch);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * Sends a request whose body is streamed from {@code body} (chunked, any size), then reads the
     * response. A daemon that refuses early (it answers before the body is in) is still heard:
     * its answer is read even when it stopped taking the body.
     */
    public Response upload(String method, String path, InputStream body, String contentType) throws IOException {
        SocketChannel ch = connect();
        try {
            writeFully(ch, chunkedHead(method, path, contentType));
            ChunkedOutput out = new ChunkedOutput(ch);
            try {
                body.transferTo(out);
                out.finish();
            } catch (IOException e) {
                if (!ch.isOpen()) {
                    throw e;
                }
                // The daemon may have answered and stopped reading (a refusal): hear what it said.
                try {
                    return readResponse(ch);
                } catch (IOException lost) {
                    e.addSuppressed(lost);
                    throw e;
                }
            }
            return readResponse(ch);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * Starts a request with a chunked body, sends {@code first} in it (nothing when empty), and
     * reads the response's head while the caller may go on writing: both directions then run at
     * once.
     */
    public Exchange open(String method, String path, String contentType, byte[] first) throws IOException {
        SocketChannel ch = connect();
        try {
            writeFully(ch, chunkedHead(method, path, contentType));
            ChunkedOutput out = new ChunkedOutput(ch);
            out.write(first);
            return new Exchange(out, readResponse(ch));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Whether something accepts connections at the address (a daemon that has started). */
    public boolean answers() {
        try (SocketChannel ch = SocketChannel.open(address)) {
            return ch.isConnected();
        } catch (IOException e) {
            return false;
        }
    }

    private ByteBuffer chunkedHead(String method, String path, String contentType) {
        StringBuilder head = head(method, path);
        head.append("Content-Type: ").append(contentType).append("\r\nTransfer-Encoding: chunked\r\n\r\n");
        return ByteBuffer.wrap(head.toString().getBytes(StandardCharsets.ISO_8859_1));
    }

    private SocketChannel connect() throws IOException {
        try {
            return SocketChannel.open(address);
        } catch (IOException e) {
            throw new Unreachable("nothing listens at " + address + ": " + e.getMessage(), e);
        }
    }

    private StringBuilder head(String method, String path) {
        return new StringBuilder(method)
                .append(' ')
                .append(path)
                .append(" HTTP/1.1\r\n")
                .append(headers);
    }

    private static Response readResponse(SocketChannel ch) throws IOException {
        ChannelInput in = new ChannelInput(ch);
        String status = in.line(MAX_HEAD);
        String[] parts = status.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
            throw new IOException("the daemon did not answer in HTTP: '" + status + "'");
        }
        int code;
        try {
            code = Integer.parseInt(parts[1]);
        } catch (NumberFormatException e) {
            throw new IOException("the daemon answered a bad status line: '" + status + "'", e);
        }
        Map<String, String> headers = new LinkedHashMap<>();
        int total = status.length();
        while (true) {
            String line = in.line(MAX_HEAD);
            total += line.length();
            if (total > MAX_HEAD) {
                throw new IOException("the daemon's answer has more than " + (MAX_HEAD >> 10) + " KiB of headers");
            }
            if (line.isEmpty()) {
                break;
            }
            int colon = line.indexOf(':');
            if (colon > 0) {
                headers.put(
                        line.substring(0, colon).strip().toLowerCase(Locale.ROOT),
                        line.substring(colon + 1).strip());
            }
        }
        InputStream body;
        String length = headers.get("content-length");
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            body = new ChunkedInput(in, MAX_HEAD);
        } else if (length != null) {
            long n;
            try {
                n = Long.parseLong(length);
            } catch (NumberFormatException e) {
                throw new IOException("bad Content-Length from the daemon: " + length, e);
            }
            if (n < 0) {
                throw new IOException("bad Content-Length from the daemon: " + length);
            }
            body = new LimitedInput(in, n);
        } else {
            body = in;
        }
        return new Response(code, headers, body);
    }

    static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
