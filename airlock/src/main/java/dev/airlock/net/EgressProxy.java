package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * The host half of {@code --network proxy}. The agent listens on the guest's
 * {@code 127.0.0.1:3128}; every connection a guest process makes there arrives here as a socket
 * stream. This class speaks the HTTP proxy protocol on it (CONNECT for HTTPS and other TCP,
 * absolute-URI requests for plain HTTP), asks the {@link EgressPolicy}, connects to the pinned
 * address itself and splices the bytes. The guest never holds a socket to the outside.
 */
public final class EgressProxy implements AutoCloseable {
    public static final int GUEST_PORT = 3128;
    /** Parked ACCEPT streams: how many guest connections can be handed over without a round trip. */
    private static final int ACCEPTORS = 4;

    private static final int MAX_HEAD = 64 << 10;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final byte[] TLS_ACCESS_DENIED = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49};

    private final String sandbox;
    private final Path agentSocket;
    private final Supplier<EgressPolicy> policy;
    private final EgressLog log;
    private final List<Secret> secrets;
    private final @Nullable TlsInterceptor interceptor;
    private volatile @Nullable GuestChannel channel;
    private volatile boolean closed;

    /**
     * @param ca the sandbox's interception CA: with it, TLS connections to hosts a secret is
     *     bound to are terminated here so the secret can be substituted; without it every
     *     CONNECT stays an opaque tunnel
     */
    public EgressProxy(
            String sandbox,
            Path agentSocket,
            Supplier<EgressPolicy> policy,
            EgressLog log,
            List<Secret> secrets,
            @Nullable InterceptionCa ca,
            @Nullable UpstreamTls upstreamTls) {
        this.sandbox = sandbox;
        this.secrets = List.copyOf(secrets);
        this.interceptor = ca == null || upstreamTls == null || secrets.isEmpty()
                ? null
                : new TlsInterceptor(ca, upstreamTls, secrets, log);
        this.agentSocket = agentSocket;
        this.policy = policy;
        this.log = log;
    }

    /**
     * What every process in the sandbox gets, so pip, npm, git and curl use the proxy unchanged;
     * secrets appear as their placeholders.
     */
    public static Map<String, String> guestEnv(List<Secret> secrets) {
        Map<String, String> env = new java.util.HashMap<>(proxyEnv());
        for (Secret secret : secrets) {
            env.put(secret.name(), secret.placeholder());
        }
        return env;
    }

    private static Map<String, String> proxyEnv() {
        String url = "http://127.0.0.1:" + GUEST_PORT;
        String noProxy = "localhost,127.0.0.1,::1";
        return Map.of(
                "HTTP_PROXY", url,
                "HTTPS_PROXY", url,
                "http_proxy", url,
                "https_proxy", url,
                "NO_PROXY", noProxy,
                "no_proxy", noProxy);
    }

    /** Connects to the sandbox's agent and starts taking the guest's proxy connections. */
    public void start() throws IOException, InterruptedException {
        GuestChannel ch = GuestChannel.connect(agentSocket, Duration.ofSeconds(30));
        channel = ch;
        for (int i = 0; i < ACCEPTORS; i++) {
            Thread.ofVirtual().name("egress-accept-" + sandbox).start(() -> acceptLoop(ch));
        }
    }

    private void acceptLoop(GuestChannel ch) {
        while (!closed && ch.isOpen()) {
            GuestSocket s;
            try {
                s = ch.accept(GUEST_PORT);
            } catch (IOException | InterruptedException e) {
                if (!closed && ch.isOpen()) {
                    System.err.println("airlockd: sandbox " + sandbox + ": egress proxy: " + e.getMessage());
                }
                break;
            }
            Thread.ofVirtual().name("egress-" + sandbox).start(() -> serve(s));
        }
        reconnect(ch);
    }

    /** The agent session can end (a daemon restart, a reconnect of the virtio port); take it up again. */
    private synchronized void reconnect(GuestChannel dead) {
        if (closed || channel != dead) {
            return;
        }
        dead.close();
        channel = null;
        for (int attempt = 0; attempt < 30 && !closed; attempt++) {
            try {
                start();
                return;
            } catch (IOException e) {
                try {
                    Thread.sleep(Duration.ofSeconds(1)); // back-off between reconnects, not synchronisation
                } catch (InterruptedException ie) {
                    return;
                }
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        GuestChannel ch = channel;
        if (ch != null) {
            ch.close();
        }
    }

    // ---- one guest connection ----

    private void serve(GuestSocket guest) {
        try (guest) {
            InputStream in = guest.input();
            OutputStream out = guest.output();
            byte[] headBytes = readHead(in);
            if (headBytes == null) {
                return;
            }
            List<String> lines = List.of(new String(headBytes, StandardCharsets.ISO_8859_1).split("\r\n"));
            String[] requestLine = lines.getFirst().split(" ");
            if (requestLine.length != 3) {
                refuse(out, 400, "malformed proxy request line", lines.getFirst());
                return;
            }
            if (requestLine[0].equals("CONNECT")) {
                tunnel(guest, requestLine[1]);
            } else {
                forward(guest, requestLine, lines.subList(1, lines.size()));
            }
        } catch (IOException e) {
            // The guest or the destination went away; nothing to tell either.
        }
    }

    /** The request head up to and including the blank line, read one byte at a time so no body byte is consumed. */
    static byte @Nullable [] readHead(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (head.size() < MAX_HEAD) {
            int b = in.read();
            if (b < 0) {
                return null;
            }
            head.write(b);
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3))
                    ? matched + 1
                    : b == '\r' ? 1 : 0;
            if (matched == 4) {
                byte[] all = head.toByteArray();
                return Arrays.copyOf(all, all.length - 4);
            }
        }
        return null;
    }

    private void tunnel(GuestSocket guest, String target) throws IOException {
        String request = "CONNECT " + target;
        HostPort hp = HostPort.parse(target, -1);
        if (hp == null || hp.port() < 0) {
            refuse(guest.output(), 400, "CONNECT needs host:port", request);
            return;
        }
        Socket upstream = open(guest.output(), hp, request);
        if (upstream == null) {
            return;
        }
        TlsInterceptor.FirstReply firstReply =
                interceptor != null && interceptor.intercepts(hp.host()) ? new TlsInterceptor.FirstReply() : null;
        try (upstream) {
            guest.output().write("HTTP/1.1 200 Connection established\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            guest.output().flush();
            Thread down = Thread.ofVirtual().start(() -> {
                try {
                    if (firstReply == null || firstReply.firstRead(upstream, guest.output())) {
                        copyThenClose(upstream, guest);
                    }
                } catch (IOException e) {
                    guest.close();
                }
            });
            // Check the TLS server name before a single client byte reaches the destination.
            byte[] first = new byte[16 << 10];
            int have = 0;
            ClientHello.Peek peek = new ClientHello.Peek.NeedMore();
            while (peek instanceof ClientHello.Peek.NeedMore && have < first.length) {
                int n = guest.input().read(first, have, first.length - have);
                if (n < 0) {
                    break;
                }
                have += n;
                peek = ClientHello.peek(first, have);
            }
            String denial = switch (peek) {
                case ClientHello.Peek.Hello h
                when h.serverName().isPresent() && !h.serverName().get().equalsIgnoreCase(hp.host()) ->
                    "TLS server name " + h.serverName().get() + " differs from the CONNECT name " + hp.host();
                case ClientHello.Peek.Malformed m -> "malformed TLS ClientHello: " + m.why();
                default -> null;
            };
            if (denial != null) {
                if (firstReply != null) {
                    firstReply.release();
                }
                log.record("DENY", request, denial);
                guest.output().write(TLS_ACCESS_DENIED);
                guest.output().flush();
                return;
            }
            if (firstReply != null
                    && interceptor != null
                    && peek instanceof ClientHello.Peek.Hello
                    && firstReply.claim()) {
                interceptor.relay(
                        guest,
                        Arrays.copyOf(first, have),
                        hp,
                        upstream,
                        firstReply.upstreamInput(upstream.getInputStream()));
                down.join();
                return;
            }
            if (firstReply != null) {
                firstReply.release();
            }
            OutputStream up = upstream.getOutputStream();
            up.write(first, 0, have);
            guest.input().transferTo(up);
            upstream.shutdownOutput();
            down.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void forward(GuestSocket guest, String[] requestLine, List<String> headers) throws IOException {
        String request = requestLine[0] + " " + requestLine[1];
        URI uri;
        try {
            uri = new URI(requestLine[1]);
        } catch (URISyntaxException e) {
            refuse(guest.output(), 400, "malformed request URI", request);
            return;
        }
        if (!"http".equalsIgnoreCase(uri.getScheme()) || uri.getHost() == null) {
            refuse(
                    guest.output(),
                    400,
                    "this proxy takes absolute http:// URIs and CONNECT (for https), not " + requestLine[1],
                    request);
            return;
        }
        HostPort hp = new HostPort(uri.getHost(), uri.getPort() < 0 ? 80 : uri.getPort());
        for (String h : headers) {
            int colon = h.indexOf(':');
            if (colon > 0 && h.substring(0, colon).trim().equalsIgnoreCase("host")) {
                HostPort named = HostPort.parse(h.substring(colon + 1).trim(), 80);
                if (named == null || !named.host().equalsIgnoreCase(hp.host())) {
                    refuse(
                            guest.output(),
                            403,
                            "the Host header (" + h.substring(colon + 1).trim()
                                    + ") names another host than the request (" + hp.host() + ")",
                            request);
                    return;
                }
            }
        }
        Socket upstream = open(guest.output(), hp, request);
        if (upstream == null) {
            return;
        }
        try (upstream) {
            StringBuilder head = new StringBuilder();
            String path = uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/" : uri.getRawPath();
            if (uri.getRawQuery() != null) {
                path += "?" + uri.getRawQuery();
            }
            head.append(requestLine[0])
                    .append(' ')
                    .append(path)
                    .append(' ')
                    .append(requestLine[2])
                    .append("\r\n");
            List<String> substituted = new java.util.ArrayList<>();
            for (String original : headers) {
                String name = original.contains(":")
                        ? original.substring(0, original.indexOf(':')).trim().toLowerCase(Locale.ROOT)
                        : "";
                if (name.startsWith("proxy-") || name.equals("connection") || name.equals("keep-alive")) {
                    continue;
                }
                head.append(Secret.substitute(secrets, hp.host(), original, substituted))
                        .append("\r\n");
            }
            // One request per upstream connection: a reused proxy connection could otherwise carry
            // a later request for another host to this destination unchecked.
            head.append("Connection: close\r\n\r\n");
            if (!substituted.isEmpty()) {
                log.record("SECRET", request, "substituted " + String.join(", ", substituted) + " in request headers");
            }
            OutputStream up = upstream.getOutputStream();
            up.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
            Thread down = Thread.ofVirtual().start(() -> copyThenClose(upstream, guest));
            try {
                guest.input().transferTo(up);
                upstream.shutdownOutput();
            } catch (IOException e) {
                // The response may still be on its way; the downstream copy ends the connection.
            }
            down.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Applies the policy and connects; on refusal answers the guest and returns null. */
    private @Nullable Socket open(OutputStream guestOut, HostPort hp, String request) throws IOException {
        EgressDecision decision = policy.get().decide(hp.host());
        if (decision instanceof EgressDecision.Deny deny) {
            refuse(guestOut, 403, deny.reason(), request);
            return null;
        }
        EgressDecision.Allow allow = (EgressDecision.Allow) decision;
        Socket s = new Socket();
        try {
            s.connect(new InetSocketAddress(allow.address(), hp.port()), (int) CONNECT_TIMEOUT.toMillis());
        } catch (IOException e) {
            s.close();
            log.record("FAIL", request, "-> " + allow.address().getHostAddress() + ": " + e.getMessage());
            respond(
                    guestOut,
                    502,
                    "airlock egress: cannot connect to " + hp.host() + ":" + hp.port() + ": " + e.getMessage());
            return null;
        }
        log.record(
                "ALLOW",
                request,
                "-> " + allow.address().getHostAddress() + ":" + hp.port() + " (" + allow.why() + ")");
        return s;
    }

    private void refuse(OutputStream guestOut, int status, String reason, String request) throws IOException {
        log.record("DENY", request, reason);
        respond(guestOut, status, "airlock egress denied: " + reason);
    }

    /** The reason is in the status line too: curl shows that line for a refused CONNECT. */
    static void respond(OutputStream out, int status, String message) throws IOException {
        String line = message.replaceAll("[\\r\\n]", " ");
        byte[] body = (message + "\n").getBytes(StandardCharsets.UTF_8);
        String head = "HTTP/1.1 " + status + " " + line + "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: " + body.length + "\r\nConnection: close\r\nX-Airlock-Egress: denied\r\n\r\n";
        out.write(head.getBytes(StandardCharsets.UTF_8));
        out.write(body);
        out.flush();
        out.close();
    }

    private static void copyThenClose(Socket upstream, GuestSocket guest) {
        try {
            upstream.getInputStream().transferTo(guest.output());
            guest.output().close();
        } catch (IOException e) {
            guest.close();
            try {
                upstream.close();
            } catch (IOException ignored) {
                // Both ends are being torn down.
            }
        }
    }

    /** host and port of a CONNECT target or Host header; IPv6 literals in brackets. */
    record HostPort(String host, int port) {
        static @Nullable HostPort parse(String s, int defaultPort) {
            String host;
            String rest;
            if (s.startsWith("[")) {
                int end = s.indexOf(']');
                if (end < 0) {
                    return null;
                }
                host = s.substring(1, end);
                rest = s.substring(end + 1);
            } else {
                int colon = s.lastIndexOf(':');
                host = colon < 0 ? s : s.substring(0, colon);
                rest = colon < 0 ? "" : s.substring(colon);
            }
            if (host.isEmpty()) {
                return null;
            }
            if (rest.isEmpty()) {
                return new HostPort(host, defaultPort);
            }
            try {
                int port = Integer.parseInt(rest.substring(1));
                return port > 0 && port < 65536 ? new HostPort(host, port) : null;
            } catch (NumberFormatException | IndexOutOfBoundsException e) {
                return null;
            }
        }
    }
}
