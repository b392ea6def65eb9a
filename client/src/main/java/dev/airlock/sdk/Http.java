package dev.airlock.sdk;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
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
 * The SDK's HTTP/1.1: one request per connection over a {@link SocketChannel} (a unix socket or
 * TCP), fixed or chunked bodies both ways, and full-duplex exchanges for streamed execs. Small on
 * purpose: the SDK carries no HTTP library.
 */
final class Http {
    private static final int MAX_HEAD = 64 << 10;

    private final SocketAddress address;
    private final String host;
    private final @Nullable String token;

    Http(SocketAddress address, String host, @Nullable String token) {
        this.address = address;
        this.host = host;
        this.token = token;
    }

    /** A response: its status, headers (lower-case names) and body stream (closing it closes the connection). */
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

    /** A request whose body is still being written while its response is read. */
    record Exchange(OutputStream requestBody, Response response) {}

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
            writeFully(ch, head.toString().getBytes(StandardCharsets.ISO_8859_1));
            if (body != null) {
                writeFully(ch, body);
            }
            return readResponse(ch);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Streams {@code body} as a chunked request body, then reads the response (also when the daemon refused early). */
    Response upload(String method, String path, InputStream body, String contentType) throws IOException {
        SocketChannel ch = connect();
        try {
            writeFully(ch, chunkedHead(method, path, contentType));
            Chunked out = new Chunked(ch);
            try {
                body.transferTo(out);
                out.finish();
            } catch (IOException e) {
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
     * Starts a request with a chunked body, sends {@code first} in it, and reads the response's
     * head while the caller may go on writing: both directions then run at once.
     */
    Exchange open(String method, String path, String contentType, byte[] first) throws IOException {
        SocketChannel ch = connect();
        try {
            writeFully(ch, chunkedHead(method, path, contentType));
            Chunked out = new Chunked(ch);
            out.write(first);
            return new Exchange(out, readResponse(ch));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private byte[] chunkedHead(String method, String path, String contentType) {
        StringBuilder head = head(method, path);
        head.append("Content-Type: ").append(contentType).append("\r\nTransfer-Encoding: chunked\r\n\r\n");
        return head.toString().getBytes(StandardCharsets.ISO_8859_1);
    }

    private SocketChannel connect() throws IOException {
        try {
            return SocketChannel.open(address);
        } catch (IOException e) {
            throw new IOException(
                    "cannot reach the Airlock daemon at " + address + ": " + e.getMessage()
                            + " (is it running? `airlock ps` starts one, `airlock serve` serves TCP)",
                    e);
        }
    }

    private StringBuilder head(String method, String path) {
        StringBuilder b = new StringBuilder(method)
                .append(' ')
                .append(path)
                .append(" HTTP/1.1\r\nHost: ")
                .append(host)
                .append("\r\nConnection: close\r\nUser-Agent: airlock-java-sdk\r\n");
        if (token != null) {
            b.append("Authorization: Bearer ").append(token).append("\r\n");
        }
        return b;
    }

    private static Response readResponse(SocketChannel ch) throws IOException {
        Input in = new Input(ch);
        String status = in.line(MAX_HEAD);
        String[] parts = status.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
            throw new IOException("the daemon did not answer in HTTP: '" + status + "'");
        }
        int code;
        try {
            code = Integer.parseInt(parts[1]);
        } catch (NumberFormatException e) {
            throw new IOException("bad status line from the daemon: '" + status + "'", e);
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
            body = new ChunkedInput(in);
        } else if (length != null) {
            try {
                body = new Limited(in, Long.parseLong(length));
            } catch (NumberFormatException e) {
                throw new IOException("bad Content-Length from the daemon: " + length, e);
            }
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

    /**
     * The socket read through a buffer of its own (not {@code Channels.newInputStream}, which may
     * hold the channel's lock while it waits and so stall a writer on the same socket).
     */
    private static final class Input extends InputStream {
        private final SocketChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocate(64 << 10).flip();

        Input(SocketChannel ch) {
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

    private static final class Limited extends InputStream {
        private final Input in;
        private long left;

        Limited(Input in, long length) {
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

    /** A chunked body (RFC 9112, section 7.1), decoded. */
    private static final class ChunkedInput extends InputStream {
        private final Input in;
        private long left;
        private boolean done;

        ChunkedInput(Input in) {
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
                while (!in.line(MAX_HEAD).isEmpty()) {
                    // trailers: none are used
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
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
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

    /** A chunked request body: one chunk per write; {@link #finish()} sends the last chunk, closing also the connection. */
    private static final class Chunked extends OutputStream {
        private final SocketChannel ch;
        private boolean finished;

        Chunked(SocketChannel ch) {
            this.ch = ch;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) throws IOException {
            if (finished) {
                throw new IOException("the request body is already complete");
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

        /** Ends the body; the connection stays open for the answer. */
        synchronized void finish() throws IOException {
            if (finished) {
                return;
            }
            finished = true;
            writeFully(ch, "0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
        }

        /** Ends the body (if it can still be ended); the answer may still be read. */
        @Override
        public void close() throws IOException {
            try {
                finish();
            } catch (IOException e) {
                // The daemon already ended the exchange: nothing left to tell it.
            }
        }
    }
}
