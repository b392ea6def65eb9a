package dev.airlock.net;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.jspecify.annotations.Nullable;

/**
 * Carries the responses of a host a secret is bound to back to the guest, with every secret
 * value masked ({@link SecretMask}) in status lines, headers, bodies and trailers, so a server
 * that reflects a request (an echo endpoint, an error page quoting a header) cannot hand the
 * real value to the guest.
 *
 * <p>Responses are read one per request the request side announced ({@link #expect}), in order,
 * so pipelined requests and keep-alive work; interim 1xx responses pass before the final one.
 * Bodies keep their framing: a {@code Content-Length} body is masked in place, a chunked body is
 * decoded, masked across chunk boundaries and sent re-chunked, a body delimited by the end of
 * the connection is masked to the end. After {@code 101 Switching Protocols} the rest of the
 * connection is masked as one stream. A compressed response (any {@code Content-Encoding} or
 * transfer coding other than chunked), which the request asked not to get, cannot be checked
 * and is refused with 502.
 */
final class ResponseRelay {
    private static final int MAX_HEAD = 64 << 10;

    /** What the request side announced, in order. */
    private sealed interface Next {}

    private record Request(String method, String target) implements Next {}

    private record Refusal(int status, String reason) implements Next {}

    private record End() implements Next {}

    private final InputStream in;
    private final OutputStream out;
    private final SecretMask mask;
    private final EgressLog log;
    private final BlockingQueue<Next> next = new LinkedBlockingQueue<>();

    ResponseRelay(InputStream upstream, OutputStream guest, SecretMask mask, EgressLog log) {
        this.in = new BufferedInputStream(upstream, 16 << 10);
        this.out = guest;
        this.mask = mask;
        this.log = log;
    }

    /** A request was sent upstream; its response is the next one. */
    void expect(String method, String target) {
        next.add(new Request(method, target));
    }

    /** After the responses announced so far, answer the guest with this refusal and stop. */
    void refuse(int status, String reason) {
        next.add(new Refusal(status, reason));
    }

    /** No more requests: stop after the responses announced so far. */
    void end() {
        next.add(new End());
    }

    /** Relays until {@link #end}, a refusal, or the upstream ends; does not close the guest side. */
    void run() throws IOException, InterruptedException {
        while (true) {
            Next n = next.take();
            switch (n) {
                case End e -> {
                    return;
                }
                case Refusal r -> {
                    EgressProxy.respond(out, r.status(), "airlock egress denied: " + r.reason());
                    return;
                }
                case Request r -> {
                    if (!relayOne(r)) {
                        return;
                    }
                }
            }
        }
    }

    /** One response (after any 1xx); false when the connection cannot carry another. */
    private boolean relayOne(Request request) throws IOException {
        while (true) {
            byte[] raw = EgressProxy.readHead(in);
            if (raw == null) {
                return false;
            }
            Head head = Head.parse(raw);
            if (head == null) {
                log.record("FAIL", request.target(), "malformed response head from the destination");
                EgressProxy.respond(out, 502, "airlock egress: malformed response head from the destination");
                return false;
            }
            String coding = head.contentEncoding != null
                            && !head.contentEncoding.isBlank()
                            && !head.contentEncoding.equalsIgnoreCase("identity")
                    ? "Content-Encoding: " + head.contentEncoding
                    : head.transferEncoding != null && !head.transferEncoding.equalsIgnoreCase("chunked")
                            ? "Transfer-Encoding: " + head.transferEncoding
                            : null;
            if (coding != null && head.status >= 200) {
                String why = "the response is encoded (" + coding + ") although the request asked for identity;"
                        + " responses from a host a secret is bound to must be plain so that the secret can be"
                        + " masked";
                log.record("DENY", request.target(), why);
                EgressProxy.respond(out, 502, "airlock egress: " + why);
                return false;
            }
            byte[] bytes = withEnd(raw);
            mask.maskAll(bytes, 0, bytes.length);
            out.write(bytes);
            if (head.status == 101) {
                out.flush();
                SecretMask.Filter rest = mask.filter(out);
                in.transferTo(rest);
                rest.finish();
                return false;
            }
            if (head.status < 200) {
                out.flush();
                continue;
            }
            boolean noBody = request.method().equals("HEAD") || head.status == 204 || head.status == 304;
            if (noBody) {
                out.flush();
                return true;
            }
            if (head.transferEncoding != null) {
                relayChunked();
                return true;
            }
            if (head.contentLength >= 0) {
                SecretMask.Filter body = mask.filter(out);
                HttpBodies.copyExactly(in, body, head.contentLength);
                body.finish();
                return true;
            }
            // Delimited by the end of the connection.
            SecretMask.Filter body = mask.filter(out);
            byte[] buf = new byte[16 << 10];
            int r;
            while ((r = in.read(buf)) >= 0) {
                body.write(buf, 0, r);
                body.flush();
            }
            body.finish();
            return false;
        }
    }

    private void relayChunked() throws IOException {
        OutputStream chunks = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                if (len > 0) {
                    out.write((Integer.toHexString(len) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(b, off, len);
                    out.write(CRLF);
                }
            }

            @Override
            public void flush() throws IOException {
                out.flush();
            }
        };
        SecretMask.Filter body = mask.filter(chunks);
        while (true) {
            long size = HttpBodies.chunkSize(HttpBodies.readLine(in));
            if (size == 0) {
                break;
            }
            HttpBodies.copyExactly(in, body, size);
            byte[] end = in.readNBytes(2);
            if (end.length != 2 || end[0] != '\r' || end[1] != '\n') {
                throw new IOException("a chunk without its CRLF");
            }
            // A chunk is what the server meant to send now (an event): pass it on.
            body.flush();
        }
        body.finish();
        out.write("0\r\n".getBytes(StandardCharsets.US_ASCII));
        String trailer;
        do {
            trailer = HttpBodies.readLine(in);
            byte[] line = (trailer + "\r\n").getBytes(StandardCharsets.ISO_8859_1);
            mask.maskAll(line, 0, line.length);
            out.write(line);
        } while (!trailer.isEmpty());
        out.flush();
    }

    private static final byte[] CRLF = {'\r', '\n'};

    private static byte[] withEnd(byte[] head) {
        byte[] b = new byte[head.length + 4];
        System.arraycopy(head, 0, b, 0, head.length);
        b[head.length] = '\r';
        b[head.length + 1] = '\n';
        b[head.length + 2] = '\r';
        b[head.length + 3] = '\n';
        return b;
    }

    /** What framing needs from a response head; a server's head is read leniently but must be unambiguous. */
    private record Head(
            int status,
            long contentLength,
            @Nullable String transferEncoding,
            @Nullable String contentEncoding) {
        static @Nullable Head parse(byte[] raw) {
            String[] lines = new String(raw, StandardCharsets.ISO_8859_1).split("\r\n", -1);
            String[] status = lines[0].split(" ", 3);
            if (status.length < 2 || !status[0].startsWith("HTTP/1.") || !status[1].matches("[0-9]{3}")) {
                return null;
            }
            long length = -1;
            String te = null;
            String ce = null;
            for (int i = 1; i < lines.length; i++) {
                int colon = lines[i].indexOf(':');
                if (colon <= 0) {
                    continue;
                }
                String name = lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT);
                String value = lines[i].substring(colon + 1).strip();
                switch (name) {
                    case "content-length" -> {
                        if (!value.matches("[0-9]{1,18}") || (length >= 0 && length != Long.parseLong(value))) {
                            return null;
                        }
                        length = Long.parseLong(value);
                    }
                    case "transfer-encoding" -> te = te == null ? value : te + ", " + value;
                    case "content-encoding" -> ce = ce == null ? value : ce + ", " + value;
                    default -> {}
                }
            }
            return new Head(Integer.parseInt(status[1]), length, te, ce);
        }
    }
}
