package dev.airlock.net;

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
import java.util.regex.Pattern;
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
    /**
     * Guest connections served at once. Each holds up to a window of buffered data on the host
     * (256 KiB) and a destination socket; past this a connection is answered 503 at once. Well
     * below the agent's 256 streams per session, which every user of the session shares.
     */
    static final int MAX_CONNECTIONS = 128;

    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Pattern DNS_NAME =
            Pattern.compile("[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\\.?");
    private static final Pattern IPV4 = Pattern.compile("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]{2,45}");
    private static final byte[] TLS_ACCESS_DENIED = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49};

    private final String sandbox;
    private final Supplier<EgressPolicy> policy;
    private final EgressLog log;
    private final List<Secret> secrets;
    private final @Nullable TlsInterceptor interceptor;
    /** The host's own proxies for CONNECT tunnels and for plain HTTP, when its environment names them. */
    private final @Nullable UpstreamProxy httpsUpstream;

    private final @Nullable UpstreamProxy httpUpstream;
    private final GuestPortListener listener;

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
        this(sandbox, agentSocket, policy, log, secrets, ca, upstreamTls, GUEST_PORT);
    }

    /** As above, listening on another guest port (tests run the agent on the host, where 3128 may be taken). */
    EgressProxy(
            String sandbox,
            Path agentSocket,
            Supplier<EgressPolicy> policy,
            EgressLog log,
            List<Secret> secrets,
            @Nullable InterceptionCa ca,
            @Nullable UpstreamTls upstreamTls,
            int guestPort) {
        this.sandbox = sandbox;
        this.listener = new GuestPortListener(
                "egress-" + sandbox, agentSocket, guestPort, ACCEPTORS, MAX_CONNECTIONS, this::serve, this::busy);
        this.secrets = List.copyOf(secrets);
        this.interceptor = ca == null || upstreamTls == null || secrets.isEmpty()
                ? null
                : new TlsInterceptor(ca, upstreamTls, secrets, log);
        this.policy = policy;
        this.log = log;
        this.httpsUpstream = UpstreamProxy.fromEnvironment(System::getenv, "https");
        this.httpUpstream = UpstreamProxy.fromEnvironment(System::getenv, "http");
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
        listener.start();
    }

    @Override
    public void close() {
        listener.close();
    }

    /** Guest connections being served now. */
    int connectionsInUse() {
        return listener.connectionsInUse();
    }

    // ---- one guest connection ----

    private void busy(GuestSocket guest) {
        try (guest) {
            log.record("DENY", "connection", "the sandbox has " + MAX_CONNECTIONS + " proxy connections open already");
            respond(
                    guest.output(),
                    503,
                    "airlock egress: the sandbox has " + MAX_CONNECTIONS + " proxy connections open already");
        } catch (IOException e) {
            // The guest went away.
        }
    }

    private void serve(GuestSocket guest) {
        try (guest) {
            InputStream in = guest.input();
            OutputStream out = guest.output();
            byte[] headBytes = readHead(in);
            if (headBytes == null) {
                return;
            }
            String firstLine = new String(headBytes, 0, firstLineLength(headBytes), StandardCharsets.ISO_8859_1);
            HttpHead head;
            HttpHead.RequestLine requestLine;
            try {
                head = HttpHead.parse(headBytes);
                requestLine = head.requestLine();
            } catch (HttpHead.Malformed e) {
                refuse(out, 400, "malformed proxy request: " + e.getMessage(), firstLine);
                return;
            }
            if (requestLine.method().equals("CONNECT")) {
                tunnel(guest, requestLine.target());
            } else {
                forward(guest, head, requestLine);
            }
        } catch (IOException e) {
            // The guest or the destination went away; nothing to tell either.
        }
    }

    /** Bytes of a head up to its first CRLF (or all of it). */
    static int firstLineLength(byte[] head) {
        for (int i = 0; i + 1 < head.length; i++) {
            if (head[i] == '\r' && head[i + 1] == '\n') {
                return i;
            }
        }
        return head.length;
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

    /**
     * A CONNECT target, strictly: a DNS name, a dotted IPv4 address or a bracketed IPv6 one, and
     * a port. Null for anything else (control characters, spaces, userinfo, paths).
     */
    static @Nullable HostPort connectTarget(String target) {
        HostPort hp = HostPort.parse(target, -1);
        if (hp == null || hp.port() < 0 || hp.host().length() > 253) {
            return null;
        }
        String h = hp.host();
        boolean bracketed = target.startsWith("[");
        boolean ok = bracketed
                ? IPV6.matcher(h).matches() && h.contains(":")
                : IPV4.matcher(h).matches() || DNS_NAME.matcher(h).matches();
        if (!ok) {
            return null;
        }
        String port = target.substring(target.lastIndexOf(':') + 1);
        return port.matches("[0-9]{1,5}") ? hp : null;
    }

    private void tunnel(GuestSocket guest, String target) throws IOException {
        String request = "CONNECT " + target;
        HostPort hp = connectTarget(target);
        if (hp == null) {
            refuse(
                    guest.output(),
                    400,
                    "CONNECT needs host:port (a host name, IPv4 address or [IPv6] address and a port)",
                    request);
            return;
        }
        Socket upstream = open(guest.output(), hp, request, httpsUpstream);
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
            // Check the TLS server name before a single client byte reaches the destination: the
            // whole ClientHello, however many records it spans, or a refusal.
            ClientHello.Assembler hello = new ClientHello.Assembler();
            byte[] buf = new byte[16 << 10];
            ClientHello.Peek peek = new ClientHello.Peek.NeedMore();
            while (peek instanceof ClientHello.Peek.NeedMore) {
                int n = guest.input().read(buf);
                if (n < 0) {
                    peek = hello.atEnd();
                    break;
                }
                peek = hello.offer(buf, 0, n);
            }
            String denial = switch (peek) {
                case ClientHello.Peek.Hello h
                when h.serverName().isPresent()
                        && !OutboundRequest.sameHost(h.serverName().get(), hp.host()) ->
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
            byte[] first = hello.bytes();
            if (first.length == 0) {
                // The guest closed without sending anything.
                if (firstReply != null) {
                    firstReply.release();
                }
                upstream.shutdownOutput();
                down.join();
                return;
            }
            if (firstReply != null
                    && interceptor != null
                    && peek instanceof ClientHello.Peek.Hello
                    && firstReply.claim()) {
                interceptor.relay(guest, first, hp, upstream, firstReply.upstreamInput(upstream.getInputStream()));
                down.join();
                return;
            }
            if (firstReply != null) {
                firstReply.release();
            }
            OutputStream up = upstream.getOutputStream();
            up.write(first);
            guest.input().transferTo(up);
            upstream.shutdownOutput();
            down.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void forward(GuestSocket guest, HttpHead head, HttpHead.RequestLine requestLine) throws IOException {
        String request = requestLine.method() + " " + requestLine.target();
        URI uri;
        try {
            uri = new URI(requestLine.target());
        } catch (URISyntaxException e) {
            refuse(guest.output(), 400, "malformed request URI", request);
            return;
        }
        if (!"http".equalsIgnoreCase(uri.getScheme()) || uri.getHost() == null) {
            refuse(
                    guest.output(),
                    400,
                    "this proxy takes absolute http:// URIs and CONNECT (for https), not " + requestLine.target(),
                    request);
            return;
        }
        HostPort hp = new HostPort(uri.getHost(), uri.getPort() < 0 ? 80 : uri.getPort());
        OutboundRequest.Prepared prepared = OutboundRequest.prepare(head, "http", hp, secrets);
        if (prepared instanceof OutboundRequest.Refused refused) {
            refuse(guest.output(), refused.status(), refused.reason(), request);
            return;
        }
        OutboundRequest.Ready ready = (OutboundRequest.Ready) prepared;
        Socket upstream = open(guest.output(), hp, request, httpUpstream);
        if (upstream == null) {
            return;
        }
        String host = hp.host().toLowerCase(Locale.ROOT);
        boolean bound = secrets.stream().anyMatch(s -> s.boundTo(host));
        try (upstream) {
            ready.logSecrets(log);
            OutputStream up = upstream.getOutputStream();
            up.write(ready.head());
            Thread down;
            if (bound) {
                // The destination may echo what it got, secret included: mask it on the way back.
                ResponseRelay relay =
                        new ResponseRelay(upstream.getInputStream(), guest.output(), new SecretMask(secrets), log);
                relay.expect(ready.method(), ready.target());
                relay.end();
                down = Thread.ofVirtual().start(() -> {
                    try {
                        relay.run();
                        guest.output().close();
                    } catch (IOException e) {
                        guest.close();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
            } else {
                down = Thread.ofVirtual().start(() -> copyThenClose(upstream, guest));
            }
            try {
                // The body by its framing, and nothing after it: a second request on this
                // connection would reach this destination unchecked.
                if (ready.chunked()) {
                    HttpBodies.copyChunked(guest.input(), up);
                } else {
                    HttpBodies.copyExactly(guest.input(), up, ready.contentLength());
                }
                up.flush();
            } catch (IOException e) {
                // The response may still be on its way; the downstream copy ends the connection.
            }
            down.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Applies the policy and connects, through the host's upstream proxy {@code via} unless
     * there is none or NO_PROXY names the destination; on refusal or failure answers the guest
     * and returns null.
     */
    private @Nullable Socket open(OutputStream guestOut, HostPort hp, String request, @Nullable UpstreamProxy via)
            throws IOException {
        EgressDecision decision = policy.get().decide(hp.host());
        if (decision instanceof EgressDecision.Deny deny) {
            refuse(guestOut, 403, deny.reason(), request);
            return null;
        }
        EgressDecision.Allow allow = (EgressDecision.Allow) decision;
        UpstreamProxy upstream = via != null && !via.bypasses(hp.host(), allow.address()) ? via : null;
        Socket s;
        try {
            if (upstream != null) {
                s = upstream.connect(allow.address(), hp.port());
            } else {
                s = new Socket();
                try {
                    s.connect(new InetSocketAddress(allow.address(), hp.port()), (int) CONNECT_TIMEOUT.toMillis());
                } catch (IOException e) {
                    s.close();
                    throw e;
                }
            }
        } catch (IOException e) {
            log.record(
                    "FAIL",
                    request,
                    "-> " + allow.address().getHostAddress() + (upstream == null ? "" : " via " + upstream) + ": "
                            + e.getMessage());
            respond(
                    guestOut,
                    502,
                    "airlock egress: cannot connect to " + hp.host() + ":" + hp.port() + ": " + e.getMessage());
            return null;
        }
        log.record(
                "ALLOW",
                request,
                "-> " + allow.address().getHostAddress() + ":" + hp.port()
                        + (upstream == null ? "" : " via upstream proxy " + upstream.host() + ":" + upstream.port())
                        + " (" + allow.why() + ")");
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
