package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

/**
 * An OpenAI-compatible endpoint inside the sandbox ({@code http://127.0.0.1:11435/v1}) that the
 * host forwards to the configured upstream, adding the API key held on the host. Requests and
 * bytes (request and response bodies) go through per-sandbox token buckets; an empty bucket is
 * answered with 429 and {@code Retry-After}, as providers do. Responses stream through as they
 * arrive, so server-sent events reach the guest event by event.
 */
public final class InferenceBridge implements AutoCloseable {
    public static final int GUEST_PORT = 11435;
    private static final int ACCEPTORS = 2;
    private static final int MAX_HEAD = 64 << 10;
    private static final int MAX_BODY = 32 << 20;
    private static final long MINUTE = Duration.ofMinutes(1).toNanos();
    private static final Set<String> PASSED_HEADERS = Set.of("content-type", "accept", "openai-beta", "user-agent");

    /** Usage since the sandbox was created (kept in its directory, so a daemon restart keeps counting). */
    public record Usage(long requests, long throttled, long bytesIn, long bytesOut) {}

    private static final tools.jackson.databind.json.JsonMapper JSON =
            tools.jackson.databind.json.JsonMapper.builder().build();

    private final String sandbox;
    private final Path agentSocket;
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
    private volatile @Nullable GuestChannel channel;
    private volatile boolean closed;

    private final Path usageFile;

    /** {@code usageFile}: where the counts are kept; counting goes on from what it holds. */
    public InferenceBridge(String sandbox, Path agentSocket, InferenceConfig config, EgressLog log, Path usageFile) {
        this.sandbox = sandbox;
        this.agentSocket = agentSocket;
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
        GuestChannel ch = GuestChannel.connect(agentSocket, Duration.ofSeconds(30));
        channel = ch;
        for (int i = 0; i < ACCEPTORS; i++) {
            Thread.ofVirtual().name("inference-accept-" + sandbox).start(() -> acceptLoop(ch));
        }
    }

    private void acceptLoop(GuestChannel ch) {
        while (!closed && ch.isOpen()) {
            try {
                GuestSocket s = ch.accept(GUEST_PORT);
                Thread.ofVirtual().name("inference-" + sandbox).start(() -> serve(s));
            } catch (IOException | InterruptedException e) {
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
        http.close();
    }

    private void serve(GuestSocket guest) {
        try (guest) {
            InputStream in = guest.input();
            OutputStream out = guest.output();
            String head = readHead(in);
            if (head == null) {
                return;
            }
            List<String> lines = List.of(head.split("\r\n"));
            String[] rl = lines.getFirst().split(" ");
            if (rl.length != 3 || !rl[1].startsWith("/")) {
                respond(out, 400, "malformed request line: " + lines.getFirst(), Map.of());
                return;
            }
            String request = rl[0] + " " + rl[1];
            long length = 0;
            HttpRequest.Builder up = HttpRequest.newBuilder();
            for (String h : lines.subList(1, lines.size())) {
                int colon = h.indexOf(':');
                if (colon <= 0) {
                    continue;
                }
                String name = h.substring(0, colon).trim().toLowerCase(Locale.ROOT);
                String value = h.substring(colon + 1).trim();
                if (name.equals("content-length")) {
                    length = Long.parseLong(value);
                } else if (name.equals("transfer-encoding")) {
                    respond(out, 411, "send the request body with Content-Length", Map.of());
                    return;
                } else if (PASSED_HEADERS.contains(name)) {
                    up.header(h.substring(0, colon).trim(), value);
                }
            }
            if (length > MAX_BODY) {
                respond(out, 413, "request body over " + MAX_BODY + " bytes", Map.of());
                return;
            }
            byte[] body = in.readNBytes((int) length);
            long now = System.nanoTime();
            String limited = limit(body.length, now);
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
            bytesIn.addAndGet(body.length);
            String path = rl[1].startsWith("/v1/") ? rl[1].substring(3) : rl[1];
            URI target = URI.create(config.upstream() + path);
            up.uri(target)
                    .timeout(Duration.ofMinutes(10))
                    .header("Authorization", "Bearer " + config.apiKey())
                    .method(rl[0], HttpRequest.BodyPublishers.ofByteArray(body));
            HttpResponse<InputStream> resp;
            try {
                resp = http.send(up.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
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
                    .ifPresent(v -> rh.append("Content-Type: ").append(v).append("\r\n"));
            rh.append("Cache-Control: no-cache\r\nConnection: close\r\n\r\n");
            out.write(rh.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            try (InputStream body2 = resp.body()) {
                byte[] buf = new byte[16 << 10];
                int n;
                while ((n = body2.read(buf)) >= 0) {
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
            out.close();
        } catch (IOException | NumberFormatException e) {
            // The guest went away or sent garbage.
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
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

    private static @Nullable String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int tail = 0;
        while (head.size() < MAX_HEAD) {
            int b = in.read();
            if (b < 0) {
                return null;
            }
            head.write(b);
            tail = tail << 8 | b;
            if (tail == 0x0d0a0d0a) {
                String s = head.toString(StandardCharsets.ISO_8859_1);
                return s.substring(0, s.length() - 4);
            }
        }
        return null;
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
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
