package dev.airlock.net;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Locale;

/**
 * The guest's side of connections to a proxy or bridge served by the real agent running on this
 * host ({@code AgentProcess}): its "guest loopback" is the host's, so a test plays the guest
 * process with plain loopback sockets. Also a small HTTP/1.1 response reader.
 */
final class GuestLoopback {
    private GuestLoopback() {}

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /**
     * Connects to a port the agent listens on, retrying only the refusals before it has begun
     * listening (it starts on the host's first ACCEPT, which the proxy sends on its own thread).
     */
    static Socket connect(int port) throws IOException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            try {
                return new Socket(InetAddress.getLoopbackAddress(), port);
            } catch (ConnectException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.yield();
            }
        }
    }

    /** One response: its head (without the blank line) and its body, de-chunked. */
    record Response(String head, byte[] body) {
        int status() {
            return Integer.parseInt(head.split(" ", 3)[1]);
        }

        String text() {
            return head + "\r\n\r\n" + new String(body, StandardCharsets.ISO_8859_1);
        }

        String bodyText() {
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    static String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("the connection ended inside a response head: " + head);
            }
            head.write(b);
            String s = head.toString(StandardCharsets.ISO_8859_1);
            if (s.endsWith("\r\n\r\n")) {
                return s.substring(0, s.length() - 4);
            }
        }
    }

    static Response readResponse(InputStream in) throws IOException {
        String head = readHead(in);
        String lower = head.toLowerCase(Locale.ROOT);
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        if (lower.contains("\r\ntransfer-encoding: chunked")) {
            while (true) {
                String size = line(in);
                int n = Integer.parseInt(size.strip(), 16);
                if (n == 0) {
                    while (!line(in).isEmpty()) {
                        // trailers
                    }
                    break;
                }
                body.writeBytes(in.readNBytes(n));
                line(in);
            }
        } else if (lower.contains("\r\ncontent-length: ")) {
            int at = lower.indexOf("\r\ncontent-length: ") + 18;
            int end = lower.indexOf("\r\n", at);
            int n = Integer.parseInt(
                    lower.substring(at, end < 0 ? lower.length() : end).strip());
            body.writeBytes(in.readNBytes(n));
        } else {
            body.writeBytes(in.readAllBytes());
        }
        return new Response(head, body.toByteArray());
    }

    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) >= 0 && c != '\n') {
            b.write(c);
        }
        String s = b.toString(StandardCharsets.ISO_8859_1);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }
}
