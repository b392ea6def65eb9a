package dev.airlock.sdk.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transport's bounds against a daemon that answers wrongly. FAKE DAEMON: a unix socket that
 * writes fixed bytes, because the real daemon cannot be made to send an endless head, a bad
 * chunk size or an event stream faster than it is read; what a real daemon answers is tested
 * through the SDK and the CLI in the product module.
 */
class DaemonHttpTest {
    @TempDir
    Path dir;

    private ServerSocketChannel server;
    private DaemonHttp http;

    @BeforeEach
    void listen() throws IOException {
        UnixDomainSocketAddress address = UnixDomainSocketAddress.of(dir.resolve("d.sock"));
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(address);
        http = new DaemonHttp(address, "airlockd", Map.of("Airlock-Build", "test"));
    }

    @AfterEach
    void close() throws IOException {
        server.close();
    }

    /**
     * Answers one connection: reads the request's head, writes {@code answer}, then waits for the
     * client to close its side; completes with the request's head once the client has.
     */
    private CompletableFuture<String> answerOnce(byte[] answer) {
        CompletableFuture<String> done = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try (SocketChannel ch = server.accept()) {
                StringBuilder head = new StringBuilder();
                ByteBuffer b = ByteBuffer.allocate(1);
                while (!head.toString().endsWith("\r\n\r\n") && ch.read(b.clear()) > 0) {
                    head.append((char) b.get(0));
                }
                ByteBuffer out = ByteBuffer.wrap(answer);
                while (out.hasRemaining()) {
                    ch.write(out);
                }
                while (ch.read(ByteBuffer.allocate(4096)) >= 0) {
                    // until the client closes the connection
                }
                done.complete(head.toString());
            } catch (IOException e) {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    @Test
    void aRequestCarriesTheHeadersGivenAndTheBodyComesBack() throws Exception {
        CompletableFuture<String> served = answerOnce(
                ascii("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
        try (DaemonHttp.Response r = http.send("GET", "/v1/health", null, "")) {
            assertThat(r.status()).isEqualTo(200);
            assertThat(new String(r.readAll(100), StandardCharsets.US_ASCII)).isEqualTo("abcde");
        }
        assertThat(served.get(30, TimeUnit.SECONDS))
                .startsWith("GET /v1/health HTTP/1.1\r\n")
                .contains("Host: airlockd\r\n", "Airlock-Build: test\r\n");
    }

    @Test
    void aHeadThatNeverEndsIsRefused() {
        answerOnce(ascii("HTTP/1.1 200 OK\r\n" + "X-Filler: 0123456789abcdef0123456789abcdef\r\n".repeat(2000)));
        assertThatThrownBy(() -> http.send("GET", "/v1/health", null, ""))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("KiB of headers");
    }

    @Test
    void aBadChunkSizeIsRefused() throws Exception {
        answerOnce(ascii("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n"));
        try (DaemonHttp.Response r = http.send("GET", "/v1/health", null, "")) {
            assertThatThrownBy(() -> r.readAll(100))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("bad chunk size");
        }
    }

    @Test
    void aLineBreakCannotBeSmuggledIntoAHeader() {
        assertThatThrownBy(() -> new DaemonHttp(
                        UnixDomainSocketAddress.of(dir.resolve("d.sock")),
                        "airlockd",
                        Map.of("Authorization", "Bearer x\r\nX-Admin: yes")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Authorization");
    }

    @Test
    void nothingListeningIsUnreachableAndNothingWasSent() {
        DaemonHttp nowhere = new DaemonHttp(UnixDomainSocketAddress.of(dir.resolve("none.sock")), "airlockd", Map.of());
        assertThat(nowhere.answers()).isFalse();
        assertThat(http.answers()).isTrue();
        assertThatThrownBy(() -> nowhere.send("GET", "/v1/health", null, ""))
                .isInstanceOf(DaemonHttp.Unreachable.class)
                .hasMessageContaining("none.sock");
    }

    @Test
    void eventsOfTheNameAreDecodedInOrderAndAReaderTooFarBehindLosesTheStream() throws Exception {
        StringBuilder stream = new StringBuilder("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
        stream.append(": a comment\n\nevent: other\ndata: skipped\n\n");
        for (int i = 1; i <= 5; i++) {
            stream.append("event: sandbox\ndata: ").append(i).append("\n\n");
        }
        CompletableFuture<String> served = answerOnce(ascii(stream.toString()));
        DaemonHttp.Response r = http.send("GET", "/v1/events", null, "");
        try (EventStreamReader<Integer> events = new EventStreamReader<>(r, "sandbox", Integer::valueOf, 2, 1024)) {
            // The reader closes the connection when it gives up: the third event found the queue full.
            served.get(30, TimeUnit.SECONDS);
            assertThat(events.next(Duration.ofSeconds(30))).isEqualTo(1);
            assertThat(events.isOpen()).isTrue();
            assertThat(events.next(Duration.ofSeconds(30))).isEqualTo(2);
            assertThat(events.isOpen()).isFalse();
            assertThat(events.next(Duration.ofSeconds(30))).isNull();
        }
    }

    @Test
    void anEventLongerThanItsLimitEndsTheStream() throws Exception {
        CompletableFuture<String> served = answerOnce(ascii("HTTP/1.1 200 OK\r\n\r\nevent: sandbox\ndata: "
                + "x".repeat(5000) + "\n\nevent: sandbox\ndata: 7\n\n"));
        DaemonHttp.Response r = http.send("GET", "/v1/events", null, "");
        try (EventStreamReader<String> events = new EventStreamReader<>(r, "sandbox", s -> s, 10, 1024)) {
            served.get(30, TimeUnit.SECONDS);
            assertThat(events.next(Duration.ofSeconds(1))).isNull();
            assertThat(events.isOpen()).isFalse();
        }
    }
}
