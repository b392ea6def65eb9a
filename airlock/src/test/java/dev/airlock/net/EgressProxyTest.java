package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.guest.AgentProcess;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

/**
 * The egress proxy against hostile guest traffic, with real parts and no sandbox: the real agent
 * runs on this host (its "guest loopback" is the host's), the proxy serves its ACCEPT streams,
 * the test plays the guest process with loopback sockets, and the destinations are servers of
 * this test on the host's loopback: a recorder of raw bytes, and an HTTP and an HTTPS echo server
 * that reflect the request's headers in a response header and in a chunked body split into
 * 7-byte chunks (so a reflected secret is cut across chunk boundaries).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(120)
class EgressProxyTest {
    private static final String REAL = "s3cr3t-" + java.util.UUID.randomUUID();

    private Path dir;

    private AgentProcess agent;
    private EgressProxy proxy;
    private int guestPort;
    private Path logDir;
    private final Secret token = Secret.create("TOKEN", REAL, "echo.test");
    private InterceptionCa sandboxCa;
    private Recorder recorder;
    private EchoServer echo;
    private EchoServer echoTls;

    @BeforeAll
    void setUp() throws Exception {
        dir = Files.createTempDirectory("airlock-egress-proxy-test");
        Path agentDir = Files.createDirectories(dir.resolve("agent"));
        logDir = Files.createDirectories(dir.resolve("sandbox"));
        agent = AgentProcess.start(agentDir);
        recorder = new Recorder();
        echo = new EchoServer(new ServerSocket(0, 50, InetAddress.getLoopbackAddress()));
        InterceptionCa upstreamCa = InterceptionCa.generate("egress proxy test upstream CA");
        echoTls = new EchoServer(upstreamCa
                .serverContext(List.of("echo.test"))
                .getServerSocketFactory()
                .createServerSocket(0, 50, InetAddress.getLoopbackAddress()));
        Path upstreamPem = dir.resolve("upstream-ca.pem");
        Files.writeString(upstreamPem, upstreamCa.certificatePem());
        sandboxCa = InterceptionCa.generate("egress proxy test sandbox CA");
        NetworkSpec spec = new NetworkSpec(
                "proxy",
                List.of("raw.test", "echo.test", "api.test"),
                List.of("raw.test:127.0.0.1", "echo.test:127.0.0.1", "api.test:127.0.0.1"),
                List.of());
        EgressPolicy policy = new EgressPolicy(spec, host -> {
            throw new UnknownHostException(host);
        });
        guestPort = GuestLoopback.freePort();
        proxy = new EgressProxy(
                "proxy-test",
                agent.socket(),
                () -> policy,
                new EgressLog(logDir),
                List.of(token),
                sandboxCa,
                UpstreamTls.trusting(upstreamPem),
                guestPort);
        proxy.start();
    }

    @AfterAll
    void tearDown() throws Exception {
        proxy.close();
        recorder.close();
        echo.close();
        echoTls.close();
        agent.close();
        dev.airlock.host.HostFiles.deleteTree(dir);
    }

    private List<String> log() throws IOException {
        return Files.readAllLines(logDir.resolve(EgressLog.FILE), StandardCharsets.UTF_8);
    }

    // ---- TLS server name check ----

    /**
     * CONNECT to the recorder, send {@code first} and end the guest's side; what the guest got
     * back until the proxy closed the connection (a reset also ends it: the proxy may refuse
     * before it has read everything).
     */
    private byte[] tunnel(byte[] first) throws Exception {
        try (Socket s = GuestLoopback.connect(guestPort)) {
            OutputStream out = s.getOutputStream();
            out.write(("CONNECT raw.test:" + recorder.port() + " HTTP/1.1\r\nHost: raw.test\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            String established = GuestLoopback.readHead(s.getInputStream());
            assertThat(established).startsWith("HTTP/1.1 200");
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    out.write(first);
                    out.flush();
                    s.shutdownOutput();
                } catch (IOException e) {
                    // refused before the proxy read it all
                }
            });
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            try {
                int n;
                while ((n = s.getInputStream().read(buf)) >= 0) {
                    got.write(buf, 0, n);
                }
            } catch (java.net.SocketException e) {
                // reset
            }
            writer.join();
            return got.toByteArray();
        }
    }

    private static final byte[] ACCESS_DENIED = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49};

    @Test
    void aClientHelloLargerThanTheOldPeekIsCheckedWholeAndRefused() throws Exception {
        // 30 KB: two records. The old proxy looked at 16 KiB only and then let the bytes through.
        byte[] hello = ClientHelloTest.records(
                ClientHelloTest.helloMessage(ClientHelloTest.padding(30_000), ClientHelloTest.serverName("evil.test")),
                1 << 14);
        assertThat(tunnel(hello)).isEqualTo(ACCESS_DENIED);
        assertThat(recorder.nextConnection()).isEmpty();
        assertThat(log())
                .anyMatch(l -> l.endsWith("DENY CONNECT raw.test:" + recorder.port()
                        + " TLS server name evil.test differs from the CONNECT name raw.test"));
    }

    @Test
    void aClientHelloInManySmallRecordsIsReassembledAndChecked() throws Exception {
        byte[] message =
                ClientHelloTest.helloMessage(ClientHelloTest.padding(3000), ClientHelloTest.serverName("evil.test"));
        byte[] tiny = ClientHelloTest.records(message, 1); // six bytes on the wire per byte of hello
        assertThat(tiny.length).isGreaterThan(16 << 10);
        assertThat(tunnel(tiny)).isEqualTo(ACCESS_DENIED);
        assertThat(recorder.nextConnection()).isEmpty();
        // The same split with the right name goes through, byte for byte.
        byte[] right = ClientHelloTest.records(
                ClientHelloTest.helloMessage(ClientHelloTest.padding(3000), ClientHelloTest.serverName("raw.test")), 1);
        tunnel(right);
        assertThat(recorder.nextConnection()).isEqualTo(right);
    }

    @Test
    void aClientHelloThatNeverCompletesIsRefused() throws Exception {
        // Past the cap in one-byte records, and cut short by the client: both fail closed.
        byte[] endless = ClientHelloTest.records(
                ClientHelloTest.helloMessage(ClientHelloTest.padding(20_000), ClientHelloTest.serverName("evil.test")),
                1);
        tunnel(endless);
        assertThat(recorder.nextConnection()).isEmpty();
        byte[] hello =
                ClientHelloTest.records(ClientHelloTest.helloMessage(ClientHelloTest.serverName("evil.test")), 100);
        assertThat(tunnel(java.util.Arrays.copyOf(hello, hello.length - 10))).isEqualTo(ACCESS_DENIED);
        assertThat(recorder.nextConnection()).isEmpty();
        assertThat(log())
                .anyMatch(l -> l.contains("malformed TLS ClientHello: no complete ClientHello within"))
                .anyMatch(l -> l.contains("malformed TLS ClientHello: the connection ended inside the ClientHello"));
    }

    @Test
    void aSandboxHasABoundedNumberOfProxyConnections() throws Exception {
        List<Socket> held = new java.util.ArrayList<>();
        try (Recorder own = new Recorder()) {
            for (int i = 0; i < EgressProxy.MAX_CONNECTIONS; i++) {
                Socket s = GuestLoopback.connect(guestPort);
                held.add(s);
                s.getOutputStream()
                        .write(("CONNECT raw.test:" + own.port() + " HTTP/1.1\r\n\r\n")
                                .getBytes(StandardCharsets.US_ASCII));
                assertThat(GuestLoopback.readHead(s.getInputStream())).startsWith("HTTP/1.1 200");
            }
            GuestLoopback.Response r = ask("CONNECT raw.test:" + own.port() + " HTTP/1.1\r\n\r\n");
            assertThat(r.status()).isEqualTo(503);
            assertThat(r.bodyText()).contains(EgressProxy.MAX_CONNECTIONS + " proxy connections open already");
        } finally {
            for (Socket s : held) {
                s.close();
            }
            // The proxy lets each go when it sees the close; the next test must not find the cap full.
            long deadline = System.nanoTime() + java.time.Duration.ofSeconds(60).toNanos();
            while (proxy.connectionsInUse() > 0 && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000); // polls a count, no timing assumed
            }
            assertThat(proxy.connectionsInUse()).isZero();
        }
    }

    // ---- targets and heads that would forge log lines ----

    private GuestLoopback.Response ask(String rawRequest) throws Exception {
        try (Socket s = GuestLoopback.connect(guestPort)) {
            s.getOutputStream().write(rawRequest.getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            return GuestLoopback.readResponse(s.getInputStream());
        }
    }

    @Test
    void controlCharactersInTargetsAndHeadersAreRefusedAndLoggedOnOneLine() throws Exception {
        int before = log().size();
        String forged = "2026-01-01T00:00:00.000Z ALLOW CONNECT bank.test:443 -> 203.0.113.9:443 (forged)";
        assertThat(ask("CONNECT raw.test:443\n" + forged + " HTTP/1.1\r\n\r\n").status())
                .isEqualTo(400);
        assertThat(ask("CONNECT raw.test\u001b[2J:443 HTTP/1.1\r\n\r\n").status())
                .isEqualTo(400);
        assertThat(ask("CONNECT raw.test:+443 HTTP/1.1\r\n\r\n").status()).isEqualTo(400);
        assertThat(ask("GET http://echo.test:" + echo.port() + "/x HTTP/1.1\r\nHost: echo.test\nX: " + forged
                                + "\r\n\r\n")
                        .status())
                .isEqualTo(400);
        List<String> added = log().subList(before, log().size());
        assertThat(added).hasSize(4).allMatch(l -> l.contains(" DENY "));
        assertThat(added).noneMatch(l -> l.startsWith("2026-01-01"));
        assertThat(added.getFirst()).contains("CONNECT raw.test:443\\n2026-01-01T00:00:00.000Z ALLOW");
        assertThat(added.get(1)).contains("raw.test\\x1b[2J:443");
        assertThat(echo.heads).noneMatch(h -> h.contains(" /x "));
    }

    // ---- secrets reflected by the destination ----

    @Test
    void aSecretEchoedOverHttpComesBackMasked() throws Exception {
        String placeholder = token.placeholder();
        GuestLoopback.Response r = ask("GET http://echo.test:" + echo.port() + "/echo HTTP/1.1\r\nHost: echo.test:"
                + echo.port() + "\r\nAuthorization: Bearer " + placeholder + "\r\nUser-Agent: agent/" + placeholder
                + "\r\nAccept-Encoding: gzip\r\n\r\n");
        assertThat(r.status()).isEqualTo(200);
        String upstreamSaw = echo.headFor("/echo");
        assertThat(upstreamSaw)
                .contains("Authorization: Bearer " + REAL)
                // only credential headers get the value; the proxy asks for an uncompressed answer
                .contains("User-Agent: agent/" + placeholder)
                .contains("Accept-Encoding: identity")
                .doesNotContain("gzip");
        String mask = "*".repeat(REAL.length());
        assertThat(r.text()).doesNotContain(REAL);
        assertThat(r.head()).contains("X-Echo-Authorization: Bearer " + mask);
        assertThat(r.bodyText()).contains("Authorization: Bearer " + mask).contains("User-Agent: agent/" + placeholder);
        assertThat(log())
                .anyMatch(l -> l.contains("SECRET GET http://echo.test:" + echo.port() + "/echo substituted TOKEN"))
                .anyMatch(l -> l.contains("left the placeholder of TOKEN in User-Agent unchanged"));
    }

    @Test
    void traceIsRefused() throws Exception {
        GuestLoopback.Response r =
                ask("TRACE http://echo.test:" + echo.port() + "/trace HTTP/1.1\r\nHost: echo.test\r\n"
                        + "Authorization: Bearer " + token.placeholder() + "\r\n\r\n");
        assertThat(r.status()).isEqualTo(405);
        assertThat(r.bodyText()).contains("TRACE is refused");
        assertThat(r.text()).doesNotContain(REAL);
        assertThat(log())
                .anyMatch(l -> l.contains("DENY TRACE http://echo.test:" + echo.port() + "/trace TRACE is refused"));
        assertThat(log()).noneMatch(l -> l.contains("ALLOW TRACE"));
    }

    @Test
    void aCompressedAnswerFromABoundHostIsRefused() throws Exception {
        GuestLoopback.Response r = ask("GET http://echo.test:" + echo.port() + "/gzip HTTP/1.1\r\nHost: echo.test\r\n"
                + "Accept-Encoding: gzip\r\nAuthorization: Bearer " + token.placeholder() + "\r\n\r\n");
        assertThat(r.status()).isEqualTo(502);
        assertThat(r.bodyText()).contains("the response is encoded (Content-Encoding: gzip)");
        assertThat(r.text()).doesNotContain(REAL);
    }

    /** A TLS connection through the proxy to echo.test, trusting only the sandbox CA, as the guest does. */
    private SSLSocket intercepted() throws Exception {
        Socket raw = GuestLoopback.connect(guestPort);
        raw.getOutputStream()
                .write(("CONNECT echo.test:" + echoTls.port() + " HTTP/1.1\r\nHost: echo.test\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
        assertThat(GuestLoopback.readHead(raw.getInputStream())).startsWith("HTTP/1.1 200");
        SSLSocket tls = (SSLSocket) InterceptionCaTest.trusting(sandboxCa)
                .getSocketFactory()
                .createSocket(raw, "echo.test", echoTls.port(), true);
        SSLParameters p = tls.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        p.setServerNames(List.of(new SNIHostName("echo.test")));
        p.setApplicationProtocols(new String[] {"http/1.1"});
        tls.setSSLParameters(p);
        tls.startHandshake();
        return tls;
    }

    @Test
    void aSecretEchoedOverInterceptedHttpsComesBackMasked() throws Exception {
        try (SSLSocket tls = intercepted()) {
            tls.getOutputStream()
                    .write(("GET /echo-tls HTTP/1.1\r\nHost: echo.test\r\nAuthorization: Bearer " + token.placeholder()
                                    + "\r\n\r\n")
                            .getBytes(StandardCharsets.US_ASCII));
            tls.getOutputStream().flush();
            GuestLoopback.Response r = GuestLoopback.readResponse(tls.getInputStream());
            assertThat(r.status()).isEqualTo(200);
            assertThat(echoTls.headFor("/echo-tls")).contains("Authorization: Bearer " + REAL);
            String mask = "*".repeat(REAL.length());
            assertThat(r.text()).doesNotContain(REAL);
            assertThat(r.head()).contains("X-Echo-Authorization: Bearer " + mask);
            assertThat(r.bodyText()).contains("Authorization: Bearer " + mask);
        }
    }

    @Test
    void aHostHeaderOrTargetNamingAnotherHostInsideInterceptedTlsIsRefused() throws Exception {
        for (String request : List.of(
                "GET /other HTTP/1.1\r\nHost: api.test\r\n",
                "GET https://api.test/other HTTP/1.1\r\nHost: echo.test\r\n",
                "GET /other HTTP/1.1\r\nHost: echo.test\r\nHost: api.test\r\n")) {
            try (SSLSocket tls = intercepted()) {
                tls.getOutputStream()
                        .write((request + "Authorization: Bearer " + token.placeholder() + "\r\n\r\n")
                                .getBytes(StandardCharsets.US_ASCII));
                tls.getOutputStream().flush();
                GuestLoopback.Response r = GuestLoopback.readResponse(tls.getInputStream());
                assertThat(r.status()).as(request).isIn(400, 403);
                assertThat(r.bodyText()).startsWith("airlock egress denied: ");
            }
        }
        assertThat(echoTls.heads).noneMatch(h -> h.contains("/other"));
        assertThat(log())
                .anyMatch(l -> l.contains("DENY GET https://echo.test:" + echoTls.port()
                        + "/other the Host header (api.test) names another host than the CONNECT (echo.test)"))
                .anyMatch(l -> l.contains("the request names api.test:443, the connection was allowed for echo.test"))
                .anyMatch(l -> l.contains("header host appears 2 times"));
    }

    // ---- loopback destinations ----

    /** Accepts connections and hands over, per connection, every byte it received. */
    private static final class Recorder implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        private final LinkedBlockingQueue<byte[]> received = new LinkedBlockingQueue<>();

        Recorder() throws IOException {
            Thread.ofVirtual().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        Thread.ofVirtual().start(() -> {
                            try (s) {
                                received.add(s.getInputStream().readAllBytes());
                            } catch (IOException e) {
                                received.add(new byte[0]);
                            }
                        });
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        int port() {
            return server.getLocalPort();
        }

        /** What the next connection to end had received (the proxy connects once per tunnel). */
        byte[] nextConnection() throws InterruptedException {
            byte[] b = received.poll(30, TimeUnit.SECONDS);
            assertThat(b).as("a connection reached the recorder").isNotNull();
            return b;
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }

    /**
     * Answers every request by reflecting its head: the Authorization value in a response header,
     * the whole head in a chunked body cut into 7-byte chunks; {@code /gzip} answers a
     * compressed body whatever was asked. One request per connection.
     */
    private static final class EchoServer implements AutoCloseable {
        private final ServerSocket server;
        final LinkedBlockingQueue<String> heads = new LinkedBlockingQueue<>();
        private final Map<Socket, Boolean> open = new ConcurrentHashMap<>();

        EchoServer(ServerSocket server) {
            this.server = server;
            Thread.ofVirtual().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        open.put(s, true);
                        Thread.ofVirtual().start(() -> serve(s));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        int port() {
            return server.getLocalPort();
        }

        /** The head of the request for this path, waiting for it (other requests' heads are dropped). */
        String headFor(String path) throws InterruptedException {
            while (true) {
                String head = heads.poll(10, TimeUnit.SECONDS);
                assertThat(head)
                        .as("a request for " + path + " reached the echo server")
                        .isNotNull();
                if (head.split(" ")[1].equals(path)) {
                    return head;
                }
            }
        }

        private void serve(Socket s) {
            try (s) {
                InputStream in = s.getInputStream();
                String head = GuestLoopback.readHead(in);
                heads.add(head);
                OutputStream out = s.getOutputStream();
                if (head.startsWith("GET /gzip")) {
                    byte[] gz = gzip(head);
                    out.write(("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + gz.length
                                    + "\r\nConnection: close\r\n\r\n")
                            .getBytes(StandardCharsets.US_ASCII));
                    out.write(gz);
                    out.flush();
                    return;
                }
                String auth = "";
                for (String line : head.split("\r\n")) {
                    if (line.toLowerCase(Locale.ROOT).startsWith("authorization:")) {
                        auth = line.substring(14).strip();
                    }
                }
                out.write(("HTTP/1.1 200 OK\r\nX-Echo-Authorization: " + auth
                                + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                        .getBytes(StandardCharsets.ISO_8859_1));
                byte[] body = ("you sent:\n" + head + "\n").getBytes(StandardCharsets.ISO_8859_1);
                for (int i = 0; i < body.length; i += 7) {
                    int n = Math.min(7, body.length - i);
                    out.write((Integer.toHexString(n) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(body, i, n);
                    out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                }
                out.write("0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
            } catch (IOException e) {
                // The proxy hung up.
            } finally {
                open.remove(s);
            }
        }

        private static byte[] gzip(String text) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            try (java.util.zip.GZIPOutputStream z = new java.util.zip.GZIPOutputStream(b)) {
                z.write(text.getBytes(StandardCharsets.ISO_8859_1));
            }
            return b.toByteArray();
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : open.keySet()) {
                s.close();
            }
        }
    }
}
