package dev.airlock.client;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Just enough HTTP/1.1 over a unix socket for the daemon's API: one request per connection,
 * fixed or chunked bodies both ways, and full-duplex streaming for sessions. A CLI command that
 * makes one call to the daemon should not pay for a general HTTP client's start-up.
 */
final class UnixHttp {
    /** The daemon is trusted, but a broken one must not make the client read forever. */
    private static final int MAX_HEAD = 64 << 10;

    private final Path socket;
    private final String build;

    UnixHttp(Path socket, String build) {
        this.socket = socket;
        this.build = build;
    }

    /** A response: its status, headers (lower-case names) and body stream. */
    record Response(int status, Map<String, String> headers, InputStream body) implements AutoCloseable {
        byte[] readAll(int max) throws IOException {
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

    /** A request whose body is still being written while its response is read (a session). */
    record Exchange(OutputStream requestBody, Response response) {}

    /** Sends a request with a whole body (or none) and returns the response, whose body is still to be read. */
    Response send(String method, String path, byte @Nullable [] body, String contentType) throws IOException {
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
            writeFully(ch, body == null ? h : concat(h, body));
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
    Response upload(String method, String path, InputStream body, String contentType) throws IOException {
        SocketChannel ch = connect();
        try {
            StringBuilder head = head(method, path);
            head.append("Content-Type: ").append(contentType).append("\r\nTransfer-Encoding: chunked\r\n\r\n");
            writeFully(ch, head.toString().getBytes(StandardCharsets.ISO_8859_1));
            ChunkedOutput out = new ChunkedOutput(ch, false);
            try {
                body.transferTo(out);
                out.close();
            } catch (IOException e) {
                if (!ch.isOpen()) {
                    throw e;
                }
                // The daemon may have answered and stopped reading (a refusal): read what it said.
                try {
                    return readResponse(ch);
                } catch (IOException answerLost) {
                    e.addSuppressed(answerLost);
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
     * Starts a request whose body is streamed (chunked) and reads the response's head while the
     * caller may keep writing: the two directions run at once.
     */
    Exchange open(String method, String path, String contentType) throws IOException {
        SocketChannel ch = connect();
        try {
            StringBuilder head = head(method, path);
            head.append("Content-Type: ").append(contentType).append("\r\nTransfer-Encoding: chunked\r\n\r\n");
            writeFully(ch, head.toString().getBytes(StandardCharsets.ISO_8859_1));
            Response r = readResponse(ch);
            return new Exchange(new ChunkedOutput(ch, true), r);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Whether a daemon accepts connections on the socket. */
    boolean answers() {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** No daemon listens on the socket (nothing was sent, so the call may be made again). */
    static final class NoDaemon extends IOException {
        private static final long serialVersionUID = 1L;

        NoDaemon(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private SocketChannel connect() throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return ch;
        } catch (IOException e) {
            ch.close();
            throw new NoDaemon("no daemon listens on " + socket + ": " + e.getMessage(), e);
        }
    }

    private StringBuilder head(String method, String path) {
        return new StringBuilder(method)
                .append(' ')
                .append(path)
                .append(" HTTP/1.1\r\nHost: airlockd\r\nConnection: close\r\n")
                .append(dev.airlock.wire.Protocol.BUILD_HEADER)
                .append(": ")
                .append(build)
                .append("\r\n");
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
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            body = new ChunkedInput(in);
        } else if (headers.containsKey("content-length")) {
            body = new LimitedInput(in, Long.parseLong(headers.get("content-length")));
        } else {
            body = in;
        }
        return new Response(code, headers, body);
    }

    private static void writeFully(SocketChannel ch, byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /**
     * Reads the socket through its own buffer. Not {@code Channels.newInputStream}: on a socket
     * channel that one may hold the channel's blocking lock while it waits, which would stall a
     * writer on the same socket; a session reads and writes at once.
     */
    static final class ChannelInput extends InputStream {
        private final SocketChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocate(64 << 10).flip();

        ChannelInput(SocketChannel ch) {
            this.ch = ch;
        }

        private boolean fill() throws IOException {
            if (buf.hasRemaining()) {
                return true;
            }
            buf.clear();
            int n = ch.read(buf);
            buf.flip();
            return n > 0;
        }

        @Override
        public int read() throws IOException {
            return fill() ? buf.get() & 0xff : -1;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            if (!fill()) {
                return -1;
            }
            int n = Math.min(len, buf.remaining());
            buf.get(b, off, n);
            return n;
        }

        /** A CRLF-terminated line without its terminator; at most {@code max} bytes. */
        String line(int max) throws IOException {
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            while (true) {
                int c = read();
                if (c < 0) {
                    throw new EOFException("the daemon closed the connection mid-answer");
                }
                if (c == '\n') {
                    byte[] b = line.toByteArray();
                    int len = b.length > 0 && b[b.length - 1] == '\r' ? b.length - 1 : b.length;
                    return new String(b, 0, len, StandardCharsets.ISO_8859_1);
                }
                if (line.size() >= max) {
                    throw new IOException("a line of the daemon's answer is longer than " + max + " bytes");
                }
                line.write(c);
            }
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }

    /** A body of known length. */
    private static final class LimitedInput extends InputStream {
        private final ChannelInput in;
        private long left;

        LimitedInput(ChannelInput in, long length) {
            this.in = in;
            this.left = length;
        }

        @Override
        public int read() throws IOException {
            if (left <= 0) {
                return -1;
            }
            int c = in.read();
            if (c >= 0) {
                left--;
            }
            return c;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (left <= 0) {
                return -1;
            }
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n > 0) {
                left -= n;
            }
            return n;
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }

    /** A chunked body (RFC 9112 section 7.1), decoded. */
    private static final class ChunkedInput extends InputStream {
        private final ChannelInput in;
        private long left;
        private boolean done;

        ChunkedInput(ChannelInput in) {
            this.in = in;
        }

        private boolean next() throws IOException {
            if (done) {
                return false;
            }
            if (left > 0) {
                return true;
            }
            String size = in.line(1024);
            int semi = size.indexOf(';');
            try {
                left = Long.parseLong((semi >= 0 ? size.substring(0, semi) : size).strip(), 16);
            } catch (NumberFormatException e) {
                throw new IOException("bad chunk size from the daemon: '" + size + "'", e);
            }
            if (left == 0) {
                // Trailers, up to the empty line that ends the body.
                while (!in.line(MAX_HEAD).isEmpty()) {
                    // ignored
                }
                done = true;
                return false;
            }
            return true;
        }

        private void endOfChunk() throws IOException {
            if (left == 0 && !in.line(16).isEmpty()) {
                throw new IOException("a chunk from the daemon does not end with CRLF");
            }
        }

        @Override
        public int read() throws IOException {
            if (!next()) {
                return -1;
            }
            int c = in.read();
            if (c < 0) {
                throw new EOFException("the daemon closed the connection mid-chunk");
            }
            left--;
            endOfChunk();
            return c;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            if (!next()) {
                return -1;
            }
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) {
                throw new EOFException("the daemon closed the connection mid-chunk");
            }
            left -= n;
            endOfChunk();
            return n;
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }

    /**
     * A chunked request body: one chunk per write; closing sends the last chunk (and, for a
     * session, closes the connection; an upload still reads its answer).
     */
    private static final class ChunkedOutput extends OutputStream {
        private final SocketChannel ch;
        private final boolean closeConnection;
        private boolean closed;

        ChunkedOutput(SocketChannel ch, boolean closeConnection) {
            this.ch = ch;
            this.closeConnection = closeConnection;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) throws IOException {
            if (closed) {
                throw new IOException("the session's request stream is closed");
            }
            if (len == 0) {
                return;
            }
            byte[] size = (Integer.toHexString(len) + "\r\n").getBytes(StandardCharsets.ISO_8859_1);
            ByteBuffer chunk = ByteBuffer.allocate(size.length + len + 2);
            chunk.put(size).put(b, off, len).put((byte) '\r').put((byte) '\n').flip();
            while (chunk.hasRemaining()) {
                ch.write(chunk);
            }
        }

        @Override
        public synchronized void close() throws IOException {
            if (closed) {
                return;
            }
            closed = true;
            if (!closeConnection) {
                ByteBuffer last = ByteBuffer.wrap("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
                while (last.hasRemaining()) {
                    ch.write(last);
                }
                return;
            }
            try {
                ByteBuffer last = ByteBuffer.wrap("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
                while (last.hasRemaining()) {
                    ch.write(last);
                }
            } catch (IOException e) {
                // The daemon already ended the session: nothing left to tell it.
            } finally {
                ch.close();
            }
        }
    }
}
