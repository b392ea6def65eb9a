package dev.airlock.net;

import dev.airlock.guest.GuestSocket;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Flow;
import java.util.concurrent.Semaphore;
import java.util.concurrent.SubmissionPublisher;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

/**
 * An OpenAI-compatible endpoint inside the sandbox ({@code http://127.0.0.1:11435/v1}) that the
 * host forwards to the configured upstream, adding the API key held on the host. Requests and
 * bytes (request and response bodies) go through per-sandbox token buckets; an empty bucket is
 * answered with 429 and {@code Retry-After}, as providers do. Responses stream through as they
 * arrive, so server-sent events reach the guest event by event.
 *
 * <p>What one sandbox can make the host hold is bounded: the limits are checked on the request
 * head, before a byte of the body is read; the body then streams to the upstream as it arrives
 * (never buffered whole), at most {@value #MAX_BODY} bytes (413 beyond, or beyond what the byte
 * limit lets through in a minute); at most {@value #MAX_IN_FLIGHT} requests are forwarded at once
 * (429 at once for more) and at most {@value #MAX_CONNECTIONS} connections are served at once.
 */
public final class InferenceBridge implements AutoCloseable {
    public static final int GUEST_PORT = 11435;
    private static final int ACCEPTORS = 2;
    static final int MAX_BODY = 32 << 20;
    static final int MAX_IN_FLIGHT = 8;
    static final int MAX_CONNECTIONS = 32;
    private static final int BODY_BUFFERS = 4;
    private static final java.util.concurrent.ExecutorService DELIVERY =
            java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
    private static final long MINUTE = Duration.ofMinutes(1).toNanos();
    private static final Set<String> PASSED_HEADERS = Set.of("content-type", "accept", "openai-beta", "user-agent");

    /** Usage since the sandbox was created (kept in its directory, so a daemon restart keeps counting). */
    public record Usage(long requests, long throttled, long bytesIn, long bytesOut) {}

    private static final tools.jackson.databind.json.JsonMapper JSON =
            tools.jackson.databind.json.JsonMapper.builder().build();

    private final String sandbox;
    private final InferenceConfig config;
    private final EgressLog log;
    private final @Nullable TokenBucket requests;
    private final @Nullable TokenBucket bytes;
    private final HttpClient http = HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(10))
            .executor(java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor())
            .build();
    private final AtomicLong served = new AtomicLong();
    private final AtomicLong throttled = new AtomicLong();
    private final AtomicLong bytesIn = new AtomicLong();
    private final AtomicLong bytesOut = new AtomicLong();
    private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
    private final GuestPortListener listener;

    private final Path usageFile;

    /** {@code usageFile}: where the counts are kept; counting goes on from what it holds. */
    public InferenceBridge(String sandbox, Path agentSocket, InferenceConfig config, EgressLog log, Path usageFile) {
        this(sandbox, agentSocket, config, log, usageFile, GUEST_PORT);
    }

    /** As above, listening on another guest port (tests run the agent on the host). */
    InferenceBridge(
            String sandbox, Path agentSocket, InferenceConfig config, EgressLog log, Path usageFile, int guestPort) {
        this.sandbox = sandbox;
        this.listener = new GuestPortListener(
                "inference-" + sandbox, agentSocket, guestPort, ACCEPTORS, MAX_CONNECTIONS, this::serve, this::busy);
        this.config = config;
        this.log = log;
        this.usageFile = usageFile;
        Usage before = loadUsage(usageFile);
        served.set(before.requests());
        throttled.set(before.throttled());
        bytesIn.set(before.bytesIn());
        bytesOut.set(before.bytesOut());
        long now = System.nanoTime();
        this.requests =
                config.requestsPerMinute() > 0 ? new TokenBucket(config.requestsPerMinute(), MINUTE, now) : null;
        this.bytes = config.bytesPerMinute() > 0 ? new TokenBucket(config.bytesPerMinute(), MINUTE, now) : null;
    }

    /** What every process gets: SDKs read these and talk to the bridge unchanged. */
    public static Map<String, String> guestEnv() {
        String url = "http://127.0.0.1:" + GUEST_PORT + "/v1";
        return Map.of("OPENAI_BASE_URL", url, "OPENAI_API_BASE", url, "OPENAI_API_KEY", "airlock-inference-bridge");
    }

    public Usage usage() {
        return new Usage(served.get(), throttled.get(), bytesIn.get(), bytesOut.get());
    }

    /** The counts kept in {@code usageFile}; none (zeros) when it is missing or unreadable. */
    public static Usage loadUsage(Path usageFile) {
        try {
            return JSON.readValue(java.nio.file.Files.readString(usageFile), Usage.class);
        } catch (IOException | RuntimeException e) {
            return new Usage(0, 0, 0, 0);
        }
    }

    /** Written at the end of every request; a request is seconds of upstream work, the write a millisecond. */
    private synchronized void saveUsage() {
        try {
            dev.airlock.host.HostFiles.writeAtomically(usageFile, JSON.writeValueAsBytes(usage()));
        } catch (RuntimeException e) {
            log.record("FAIL", "inference usage", "cannot write " + usageFile + ": " + e.getMessage());
        }
    }

    public void start() throws IOException {
        listener.start();
    }

    @Override
    public void close() {
        listener.close();
        http.close();
    }

    private void busy(GuestSocket s) {
        try (s) {
            refuseBusy(s.output(), MAX_CONNECTIONS + " connections to the bridge are open already");
        } catch (IOException e) {
            // The guest went away.
        }
    }

    private void serve(GuestSocket guest) {
        try (guest) {
            InputStream in = guest.input();
            OutputStream out = guest.output();
            byte[] raw = EgressProxy.readHead(in);
            if (raw == null) {
                return;
            }
            HttpHead head;
            HttpHead.RequestLine rl;
            long length;
            try {
                head = HttpHead.parse(raw);
                rl = head.requestLine();
                if (!rl.target().startsWith("/")) {
                    throw new HttpHead.Malformed("the target must be a path, e.g. /v1/chat/completions");
                }
                if (head.single("transfer-encoding") != null) {
                    respond(out, 411, "send the request body with Content-Length", Map.of());
                    return;
                }
                String cl = head.single("content-length");
                length = cl == null ? 0 : OutboundRequest.parseLength(cl);
            } catch (HttpHead.Malformed e) {
                respond(out, 400, "malformed request: " + e.getMessage(), Map.of());
                return;
            }
            String request = rl.method() + " " + rl.target();
            long tooLarge = config.bytesPerMinute() > 0 ? Math.min(MAX_BODY, config.bytesPerMinute()) : MAX_BODY;
            if (length > tooLarge) {
                String why = "request body of " + length + " bytes is over "
                        + (tooLarge == MAX_BODY
                                ? "the bridge's limit of " + MAX_BODY + " bytes"
                                : "the byte limit of " + config.bytesPerMinute() + " per minute");
                log.record("DENY", "inference " + request, why);
                respond(out, 413, "airlock inference bridge: " + why, Map.of());
                return;
            }
            if (!inFlight.tryAcquire()) {
                refuseBusy(out, MAX_IN_FLIGHT + " requests of this sandbox are in flight already");
                return;
            }
            try {
                forward(in, out, head, rl, request, length);
            } finally {
                inFlight.release();
            }
            // Only now does the guest see the end of the response: a request it sends next is
            // not refused for one that is over.
            out.close();
        } catch (IOException e) {
            // The guest went away or sent garbage.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void refuseBusy(OutputStream out, String why) throws IOException {
        throttled.incrementAndGet();
        log.record("THROTTLE", "inference", why);
        respond(out, 429, "airlock inference bridge: " + why, Map.of("Retry-After", "1"));
    }

    /** Checks the limits on the head, then streams the body up and the response down. */
    private void forward(
            InputStream in, OutputStream out, HttpHead head, HttpHead.RequestLine rl, String request, long length)
            throws IOException, InterruptedException {
        long now = System.nanoTime();
        String limited = limit(length, now);
        if (limited != null) {
            throttled.incrementAndGet();
            saveUsage();
            log.record("THROTTLE", "inference " + request, limited);
            long wait = Math.max(
                    1,
                    Duration.ofNanos(requests != null ? requests.nanosUntilOne(now) : 0)
                            .toSeconds());
            respond(out, 429, "airlock inference bridge: " + limited, Map.of("Retry-After", String.valueOf(wait)));
            return;
        }
        HttpRequest.Builder up = HttpRequest.newBuilder();
        for (HttpHead.Field f : head.fields()) {
            if (PASSED_HEADERS.contains(f.lowerName())) {
                up.header(f.name(), f.value());
            }
        }
        bytesIn.addAndGet(length);
        String path = rl.target().startsWith("/v1/") ? rl.target().substring(3) : rl.target();
        URI target;
        try {
            target = URI.create(config.upstream() + path);
        } catch (IllegalArgumentException e) {
            respond(out, 400, "malformed request path", Map.of());
            return;
        }
        // The body goes up as it arrives, exactly as long as announced.
        HttpRequest.BodyPublisher body = length == 0
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.fromPublisher(streamed(in, length), length);
        up.uri(target)
                .timeout(Duration.ofMinutes(10))
                .header("Authorization", "Bearer " + config.apiKey())
                .method(rl.method(), body);
        HttpResponse<InputStream> resp;
        try {
            resp = http.send(up.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException | IllegalArgumentException e) {
            log.record("FAIL", "inference " + request, "-> " + target + ": " + e.getMessage());
            respond(
                    out,
                    502,
                    "airlock inference bridge: upstream " + config.upstream() + " failed: " + e.getMessage(),
                    Map.of());
            return;
        }
        served.incrementAndGet();
        log.record("ALLOW", "inference " + request, "-> " + target + " " + resp.statusCode());
        StringBuilder rh =
                new StringBuilder("HTTP/1.1 " + resp.statusCode() + " " + reason(resp.statusCode()) + "\r\n");
        resp.headers()
                .firstValue("content-type")
                .filter(v -> v.chars().noneMatch(c -> c < 0x20 || c == 0x7f))
                .ifPresent(v -> rh.append("Content-Type: ").append(v).append("\r\n"));
        rh.append("Cache-Control: no-cache\r\nConnection: close\r\n\r\n");
        out.write(rh.toString().getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        try (InputStream down = resp.body()) {
            byte[] buf = new byte[16 << 10];
            int n;
            while ((n = down.read(buf)) >= 0) {
                out.write(buf, 0, n);
                out.flush();
                bytesOut.addAndGet(n);
                if (bytes != null) {
                    bytes.take(n, System.nanoTime());
                }
            }
        }
        // Before the guest sees the end of the response: what it was told is what is kept.
        saveUsage();
    }

    /**
     * Exactly {@code length} bytes of the guest's stream as they arrive, read on a thread of
     * their own: the HTTP client pulls an {@code InputStream} body on its own threads and would
     * not send what it has while a read waits for the guest. At most {@value #BODY_BUFFERS}
     * pieces wait for the upstream; the guest is not read further until they are sent.
     */
    private static Flow.Publisher<ByteBuffer> streamed(InputStream in, long length) {
        return subscriber -> {
            SubmissionPublisher<ByteBuffer> pieces = new SubmissionPublisher<>(DELIVERY, BODY_BUFFERS);
            pieces.subscribe(subscriber);
            Thread.ofVirtual().name("inference-body").start(() -> {
                try (pieces) {
                    byte[] buf = new byte[16 << 10];
                    long left = length;
                    while (left > 0) {
                        int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                        if (n < 0) {
                            throw new IOException("the request body ended " + left + " bytes early");
                        }
                        pieces.submit(ByteBuffer.wrap(Arrays.copyOf(buf, n)));
                        left -= n;
                    }
                } catch (IOException | RuntimeException e) {
                    pieces.closeExceptionally(e);
                }
            });
        };
    }

    private @Nullable String limit(long bodyBytes, long now) {
        if (bytes != null && bytes.nanosUntilOne(now) > 0) {
            return "byte limit of " + config.bytesPerMinute() + " per minute reached";
        }
        if (requests != null && !requests.tryTake(1, now)) {
            return "request limit of " + config.requestsPerMinute() + " per minute reached";
        }
        if (bytes != null) {
            bytes.take(bodyBytes, now);
        }
        return null;
    }

    private static String reason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 400 -> "Bad Request";
            case 401 -> "Unauthorized";
            case 404 -> "Not Found";
            case 429 -> "Too Many Requests";
            case 500 -> "Internal Server Error";
            default -> "Status";
        };
    }

    private static void respond(OutputStream out, int status, String message, Map<String, String> extra)
            throws IOException {
        byte[] body = ("{\"error\":{\"message\":" + jsonString(message) + ",\"type\":\"airlock\"}}\n")
                .getBytes(StandardCharsets.UTF_8);
        StringBuilder head = new StringBuilder("HTTP/1.1 " + status + " " + reason(status) + "\r\n");
        head.append("Content-Type: application/json\r\nContent-Length: ")
                .append(body.length)
                .append("\r\nConnection: close\r\n");
        extra.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
        head.append("\r\n");
        out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
        out.write(body);
        out.close();
    }

    private static String jsonString(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20 || c == 0x7f) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }
}
