package dev.airlock.net;

import dev.airlock.guest.GuestSocket;
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.SequenceInputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLParameters;
import org.jspecify.annotations.Nullable;

/**
 * Terminates a guest's TLS connection to a host a secret is bound to, so that the placeholder
 * in its HTTP request headers can be replaced by the real value, and sends the requests on over
 * a second TLS connection that verifies the destination's certificate. Request heads are checked
 * and rewritten by {@link OutboundRequest} (the Host must be the CONNECT host, no TRACE, values
 * only in credential headers), bodies copied by their framing; responses come back through
 * {@link ResponseRelay}, which masks any secret value the server sends back, and stream as they
 * arrive (server-sent events, chunked responses, keep-alive and pipelining all work).
 */
final class TlsInterceptor {
    private static final java.time.Duration HANDSHAKE_TIMEOUT = java.time.Duration.ofSeconds(15);
    private final InterceptionCa ca;
    private final UpstreamTls upstreamTls;
    private final List<Secret> secrets;
    private final EgressLog log;

    TlsInterceptor(InterceptionCa ca, UpstreamTls upstreamTls, List<Secret> secrets, EgressLog log) {
        this.ca = ca;
        this.upstreamTls = upstreamTls;
        this.secrets = List.copyOf(secrets);
        this.log = log;
    }

    /** Whether connections to this host are intercepted: a secret may be sent there. */
    boolean intercepts(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        return secrets.stream().anyMatch(s -> s.boundTo(h));
    }

    /**
     * Who reads the destination's first bytes. The proxy copies them to the guest from the
     * moment the tunnel opens (server-first protocols need that), but an intercepted connection
     * needs them for its own TLS handshake. Whichever happens first decides: the destination
     * speaking (then it is not a TLS server: opaque) or the proxy claiming the connection after
     * the guest's ClientHello (intercepted).
     */
    static final class FirstReply {
        private static final int UNDECIDED = 0;
        private static final int OPAQUE = 1;
        private static final int INTERCEPTED = 2;
        private final AtomicInteger state = new AtomicInteger(UNDECIDED);
        private final CompletableFuture<byte[]> first = new CompletableFuture<>();

        boolean claim() {
            return state.compareAndSet(UNDECIDED, INTERCEPTED);
        }

        void release() {
            state.compareAndSet(UNDECIDED, OPAQUE);
        }

        /**
         * The downstream copy: one read, then either on to the guest or handed to the
         * interception. Returns true when the rest is the caller's to copy to the guest.
         */
        boolean firstRead(Socket upstream, OutputStream guest) throws IOException {
            byte[] buf = new byte[16 << 10];
            int n;
            // An intercepted destination must answer the ClientHello in time; one that is not
            // intercepted may stay quiet as long as it likes.
            upstream.setSoTimeout((int) HANDSHAKE_TIMEOUT.toMillis());
            while (true) {
                try {
                    n = upstream.getInputStream().read(buf);
                    break;
                } catch (java.net.SocketTimeoutException e) {
                    if (state.get() == INTERCEPTED) {
                        first.completeExceptionally(e);
                        throw e;
                    }
                } catch (IOException e) {
                    first.completeExceptionally(e);
                    throw e;
                }
            }
            if (state.compareAndSet(UNDECIDED, OPAQUE) || state.get() == OPAQUE) {
                upstream.setSoTimeout(0);
                if (n > 0) {
                    guest.write(buf, 0, n);
                    guest.flush();
                }
                return n >= 0;
            }
            first.complete(n < 0 ? new byte[0] : Arrays.copyOf(buf, n));
            return false;
        }

        /** The destination's bytes for the interception: the first read, then the socket's own stream. */
        InputStream upstreamInput(InputStream socketIn) {
            InputStream handedOver = new InputStream() {
                private @Nullable InputStream bytes;

                private InputStream bytes() throws IOException {
                    if (bytes == null) {
                        try {
                            bytes = new ByteArrayInputStream(first.get());
                        } catch (ExecutionException e) {
                            throw new IOException(e.getCause());
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            throw new IOException("interrupted", e);
                        }
                    }
                    return bytes;
                }

                @Override
                public int read() throws IOException {
                    return bytes().read();
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    return bytes().read(b, off, len);
                }
            };
            return new SequenceInputStream(handedOver, socketIn);
        }
    }

    /**
     * Serves one claimed connection: the upstream handshake first (so a refusal can be told to
     * the guest as an HTTP answer), then the guest's handshake with a certificate for the host
     * issued by the sandbox CA, then the requests.
     */
    void relay(GuestSocket guest, byte[] clientHello, EgressProxy.HostPort hp, Socket upstream, InputStream upIn)
            throws IOException {
        String request = "CONNECT " + hp.host() + ":" + hp.port();
        OutputStream upRaw = new OutputStream() {
            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                upstream.getOutputStream().write(b, off, len);
            }

            @Override
            public void write(int b) throws IOException {
                upstream.getOutputStream().write(b);
            }

            @Override
            public void close() throws IOException {
                upstream.shutdownOutput();
            }
        };
        StreamTls up = upstreamTls.client(hp.host(), hp.port(), upIn, upRaw);
        String upstreamFailure = null;
        try {
            up.handshake();
            upstream.setSoTimeout(0);
        } catch (IOException e) {
            upstreamFailure = describe(e, hp);
            log.record("FAIL", request, upstreamFailure);
        }
        SSLEngine engine = ca.serverContext(hp.host()).createSSLEngine();
        engine.setUseClientMode(false);
        SSLParameters p = engine.getSSLParameters();
        p.setApplicationProtocols(new String[] {"http/1.1"});
        engine.setSSLParameters(p);
        StreamTls down = new StreamTls(engine, clientHello, guest.input(), guest.output());
        try {
            down.handshake();
        } catch (IOException e) {
            log.record(
                    "FAIL",
                    request,
                    "the guest's TLS client did not accept the sandbox CA's certificate for " + hp.host() + ": "
                            + e.getMessage());
            return;
        }
        InputStream fromGuest = new BufferedInputStream(down.input());
        if (upstreamFailure != null) {
            EgressProxy.readHead(fromGuest);
            EgressProxy.respond(down.output(), 502, "airlock egress: " + upstreamFailure);
            return;
        }
        log.record("INTERCEPT", request, "TLS terminated with the sandbox CA to substitute secrets in request headers");
        ResponseRelay relay = new ResponseRelay(up.input(), down.output(), new SecretMask(secrets), log);
        Thread responses = Thread.ofVirtual().name("egress-tls-down").start(() -> {
            try {
                relay.run();
                down.output().close();
            } catch (IOException e) {
                guest.close();
                try {
                    upstream.close();
                } catch (IOException ignored) {
                    // Both ends are being torn down.
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try {
            try {
                relayRequests(fromGuest, up.output(), hp, relay);
            } finally {
                relay.end();
            }
            up.output().close();
            responses.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Request after request until the guest ends the connection or a request is refused. */
    private void relayRequests(InputStream in, OutputStream up, EgressProxy.HostPort hp, ResponseRelay relay)
            throws IOException {
        byte[] raw;
        while ((raw = EgressProxy.readHead(in)) != null) {
            OutboundRequest.Prepared prepared;
            String asSent = new String(raw, 0, EgressProxy.firstLineLength(raw), StandardCharsets.ISO_8859_1);
            try {
                prepared = OutboundRequest.prepare(HttpHead.parse(raw), "https", hp, secrets);
            } catch (HttpHead.Malformed e) {
                prepared = new OutboundRequest.Refused(400, "malformed request: " + e.getMessage());
            }
            if (prepared instanceof OutboundRequest.Refused refused) {
                String[] parts = asSent.split(" ", -1);
                String origin = "https://" + OutboundRequest.authority(hp, "https");
                String logged = parts.length == 3 && parts[1].startsWith("/")
                        ? parts[0] + " " + origin + parts[1]
                        : origin + " " + asSent;
                log.record("DENY", logged, refused.reason());
                relay.refuse(refused.status(), refused.reason());
                return;
            }
            OutboundRequest.Ready ready = (OutboundRequest.Ready) prepared;
            ready.logSecrets(log);
            relay.expect(ready.method(), ready.target());
            up.write(ready.head());
            if (ready.chunked()) {
                HttpBodies.copyChunked(in, up);
            } else {
                HttpBodies.copyExactly(in, up, ready.contentLength());
            }
            up.flush();
            if (ready.upgrade()) {
                // A protocol switch (WebSocket): what follows is no longer HTTP requests.
                in.transferTo(up);
                return;
            }
        }
    }

    /** What the guest and the log are told when the destination's TLS is refused. */
    private static String describe(IOException e, EgressProxy.HostPort hp) {
        Throwable root = e;
        boolean certificate = false;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
            certificate |= root instanceof CertificateException;
        }
        String where = hp.host() + ":" + hp.port();
        if (certificate
                || (e instanceof SSLHandshakeException
                        && String.valueOf(e.getMessage()).contains("PKIX"))) {
            return "the TLS certificate of " + where + " is not trusted (" + root.getMessage()
                    + "); the proxy verifies destinations against the host's trust store; to trust another CA,"
                    + " start the daemon with " + UpstreamTls.EXTRA_CA_VARIABLE + "=FILE.pem";
        }
        return "TLS with " + where + " failed: " + root.getMessage();
    }
}
