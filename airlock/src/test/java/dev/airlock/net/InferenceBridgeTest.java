package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.airlock.guest.AgentProcess;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What one sandbox can make the host hold through the inference bridge: limits checked before a
 * body is read, bodies streamed rather than buffered, a cap on requests in flight. Real parts:
 * the real agent on this host (the test plays the guest process on the host's loopback), the
 * bridge, and an upstream of this test on the loopback.
 */
@Timeout(120)
class InferenceBridgeTest {
    @TempDir
    Path dir;

    private @Nullable AgentProcess agent;
    private @Nullable InferenceBridge bridge;
    private int guestPort;
    private HttpServer upstream;
    private final AtomicInteger requests = new AtomicInteger();
    private final CountDownLatch release = new CountDownLatch(1);
    private final CountDownLatch slowArrived = new CountDownLatch(InferenceBridge.MAX_IN_FLIGHT);
    private final CompletableFuture<Integer> firstPart = new CompletableFuture<>();

    @BeforeEach
    void startUpstream() throws Exception {
        upstream = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        upstream.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        upstream.createContext("/v1/chat/completions", x -> {
            requests.incrementAndGet();
            answer(x, x.getRequestBody().readAllBytes().length);
        });
        upstream.createContext("/v1/slow", x -> {
            requests.incrementAndGet();
            x.getRequestBody().readAllBytes();
            slowArrived.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            answer(x, 0);
        });
        upstream.createContext("/v1/streamed", x -> {
            requests.incrementAndGet();
            InputStream in = x.getRequestBody();
            byte[] first = in.readNBytes(1000);
            firstPart.complete(first.length);
            answer(x, first.length + in.readAllBytes().length);
        });
        upstream.start();
    }

    private static void answer(HttpExchange x, int received) throws IOException {
        byte[] body = ("{\"received\":" + received + "}").getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().add("Content-Type", "application/json");
        x.sendResponseHeaders(200, body.length);
        x.getResponseBody().write(body);
        x.close();
    }

    private void startBridge(long requestsPerMinute, long bytesPerMinute) throws Exception {
        AgentProcess a = AgentProcess.start(Files.createDirectories(dir.resolve("agent")));
        agent = a;
        guestPort = GuestLoopback.freePort();
        InferenceConfig config = new InferenceConfig(
                "http://127.0.0.1:" + upstream.getAddress().getPort() + "/v1",
                "host-key",
                requestsPerMinute,
                bytesPerMinute);
        InferenceBridge b = new InferenceBridge(
                "bridge-test", a.socket(), config, new EgressLog(dir), dir.resolve("usage.json"), guestPort);
        bridge = b;
        b.start();
    }

    @AfterEach
    void stop() throws Exception {
        release.countDown();
        InferenceBridge b = bridge;
        if (b != null) {
            b.close();
        }
        AgentProcess a = agent;
        if (a != null) {
            a.close();
        }
        upstream.stop(0);
    }

    /** A guest connection that has sent {@code head} (and no body yet). */
    private Socket send(String path, long contentLength) throws IOException {
        Socket s = GuestLoopback.connect(guestPort);
        // A bridge that waits for a body it should not read would leave this read hanging.
        s.setSoTimeout(20_000);
        s.getOutputStream()
                .write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                + "Content-Length: " + contentLength + "\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
        return s;
    }

    private GuestLoopback.Response post(String path, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        try (Socket s = send(path, b.length)) {
            s.getOutputStream().write(b);
            s.getOutputStream().flush();
            return GuestLoopback.readResponse(s.getInputStream());
        }
    }

    @Test
    void aRequestOverTheRateLimitIsRefusedBeforeItsBodyIsRead() throws Exception {
        startBridge(1, 0);
        assertThat(post("/v1/chat/completions", "{}").status()).isEqualTo(200);
        // Announces 10 MB and sends none of it: the answer must not wait for the body.
        try (Socket s = send("/v1/chat/completions", 10_000_000)) {
            GuestLoopback.Response r = GuestLoopback.readResponse(s.getInputStream());
            assertThat(r.status()).isEqualTo(429);
            assertThat(r.head()).contains("Retry-After: ");
            assertThat(r.bodyText()).contains("request limit of 1 per minute reached");
        }
        assertThat(requests.get()).isEqualTo(1);
    }

    @Test
    void aBodyOverTheCapOrOverWhatTheByteLimitLetsThroughIs413() throws Exception {
        startBridge(0, 1000);
        try (Socket s = send("/v1/chat/completions", 5000)) {
            GuestLoopback.Response r = GuestLoopback.readResponse(s.getInputStream());
            assertThat(r.status()).isEqualTo(413);
            assertThat(r.bodyText()).contains("request body of 5000 bytes is over the byte limit of 1000 per minute");
        }
        try (Socket s = send("/v1/chat/completions", InferenceBridge.MAX_BODY + 1L)) {
            assertThat(GuestLoopback.readResponse(s.getInputStream()).status()).isEqualTo(413);
        }
        assertThat(requests.get()).isZero();
        assertThat(post("/v1/chat/completions", "{\"small\":true}").status()).isEqualTo(200);
    }

    @Test
    void requestsInFlightAreCappedPerSandbox() throws Exception {
        startBridge(0, 0);
        List<Future<GuestLoopback.Response>> held = new ArrayList<>();
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < InferenceBridge.MAX_IN_FLIGHT; i++) {
                held.add(pool.submit(() -> post("/v1/slow", "{}")));
            }
            assertThat(slowArrived.await(60, TimeUnit.SECONDS)).isTrue();
            GuestLoopback.Response refused = post("/v1/chat/completions", "{}");
            assertThat(refused.status()).isEqualTo(429);
            assertThat(refused.bodyText())
                    .contains(InferenceBridge.MAX_IN_FLIGHT + " requests of this sandbox are in flight");
            release.countDown();
            for (Future<GuestLoopback.Response> f : held) {
                assertThat(f.get().status()).isEqualTo(200);
            }
        }
        // The cap is on what is in flight, not a count: the next one passes.
        assertThat(post("/v1/chat/completions", "{}").status()).isEqualTo(200);
    }

    @Test
    void theBodyReachesTheUpstreamAsItArrivesNotBufferedWhole() throws Exception {
        startBridge(0, 0);
        byte[] body = new byte[3000];
        java.util.Arrays.fill(body, (byte) 'x');
        try (Socket s = send("/v1/streamed", body.length)) {
            OutputStream out = s.getOutputStream();
            out.write(body, 0, 1000);
            out.flush();
            // The upstream has the first part while the guest still holds the rest back.
            assertThat(firstPart.get(30, TimeUnit.SECONDS)).isEqualTo(1000);
            out.write(body, 1000, 2000);
            out.flush();
            GuestLoopback.Response r = GuestLoopback.readResponse(s.getInputStream());
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.bodyText()).isEqualTo("{\"received\":3000}");
        }
    }
}
