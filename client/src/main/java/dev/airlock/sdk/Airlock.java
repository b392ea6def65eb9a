package dev.airlock.sdk;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.airlock.sdk.http.DaemonHttp;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * A connection to an Airlock daemon: the entry point of the SDK.
 *
 * <pre>{@code
 * try (Airlock airlock = Airlock.connect()) {
 *     Sandbox box = airlock.sandboxes().create(SandboxSpec.builder().runtime("container").build());
 *     System.out.print(box.exec(Command.of("uname", "-a")).stdoutText());
 *     box.remove();
 * }
 * }</pre>
 *
 * <p>{@link #connect()} reaches the local daemon's unix socket and starts nothing (run any
 * {@code airlock} command, or {@code airlock daemon}, to have one); {@link #connect(URI, String)}
 * reaches one that {@code airlock serve --listen} put on TCP, with its token. Every call is one
 * HTTP request on its own connection, so an {@code Airlock} may be used from many threads at
 * once; it holds no connection between calls, and closing it only marks it closed.
 */
public final class Airlock implements AutoCloseable {
    static final JsonMapper JSON = JsonMapper.builder()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .changeDefaultPropertyInclusion(i -> i.withValueInclusion(JsonInclude.Include.NON_NULL))
            .build();
    /** The largest JSON answer read (a long list of sandboxes is far smaller). */
    private static final int MAX_ANSWER = 64 << 20;

    private final DaemonHttp http;
    private final String where;
    private volatile boolean closed;

    private Airlock(DaemonHttp http, String where) {
        this.http = http;
        this.where = where;
    }

    /**
     * The daemon of this user's data directory, over its unix socket
     * ({@code $AIRLOCK_RUNTIME_DIR}, else {@code $XDG_RUNTIME_DIR/airlock}, else
     * {@code /tmp/airlock-$USER}, then {@code airlockd.sock}). Nothing is sent until the first call.
     */
    public static Airlock connect() {
        return connect(defaultSocket(System.getenv()));
    }

    /** A daemon's unix socket. */
    public static Airlock connect(Path socket) {
        return new Airlock(
                new DaemonHttp(UnixDomainSocketAddress.of(socket), "localhost", headers(null)), socket.toString());
    }

    /**
     * A daemon served on TCP by {@code airlock serve --listen HOST:PORT}, e.g.
     * {@code Airlock.connect(URI.create("http://127.0.0.1:7070"), token)} with the token from the
     * daemon's {@code <data>/api-token}.
     */
    public static Airlock connect(URI url, String token) {
        if (!"http".equals(url.getScheme()) || url.getHost() == null || url.getPort() < 0) {
            throw new IllegalArgumentException("expected http://HOST:PORT, got " + url);
        }
        if (token.isBlank()) {
            throw new IllegalArgumentException("a token is needed (the daemon's <data>/api-token)");
        }
        return new Airlock(
                new DaemonHttp(
                        new InetSocketAddress(url.getHost(), url.getPort()),
                        url.getHost() + ":" + url.getPort(),
                        headers(token.strip())),
                url.toString());
    }

    /** What every request of the SDK says besides its own headers: who asks, and the token (TCP). */
    private static Map<String, String> headers(@Nullable String token) {
        Map<String, String> h = new LinkedHashMap<>();
        h.put("User-Agent", "airlock-java-sdk");
        if (token != null) {
            h.put("Authorization", "Bearer " + token);
        }
        return h;
    }

    static Path defaultSocket(Map<String, String> env) {
        String runtime = env.get("AIRLOCK_RUNTIME_DIR");
        if (runtime != null && !runtime.isBlank()) {
            return Path.of(runtime, "airlockd.sock");
        }
        String xdg = env.get("XDG_RUNTIME_DIR");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "airlock", "airlockd.sock");
        }
        return Path.of("/tmp", "airlock-" + System.getProperty("user.name"), "airlockd.sock");
    }

    /** The daemon's sandboxes. */
    public Sandboxes sandboxes() {
        return new Sandboxes(this);
    }

    /** The daemon's images: pull and build. */
    public Images images() {
        return new Images(this);
    }

    /**
     * Sandbox lifecycle events from now on (all sandboxes); close the stream to stop. Its
     * {@link EventStream#next(Duration)} waits for the next one.
     */
    public EventStream events() {
        return new EventStream(this, null);
    }

    /** Whether the daemon answers, and what it says about itself (version, pid, data directory). */
    public Map<String, Object> health() {
        return call("GET", "/v1/health", null, new TypeReference<Map<String, Object>>() {});
    }

    @Override
    public void close() {
        closed = true;
    }

    // ---- what the other classes of the SDK call --------------------------------------------

    DaemonHttp http() {
        ensureOpen();
        return http;
    }

    static String sandboxPath(String name) {
        return "/v1/sandboxes/" + encode(name);
    }

    static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    <T> T call(String method, String path, @Nullable Object body, Class<T> type) {
        return JSON.readValue(raw(method, path, body), type);
    }

    <T> T call(String method, String path, @Nullable Object body, TypeReference<T> type) {
        return JSON.readValue(raw(method, path, body), type);
    }

    /** One call with a JSON body (or none); the answer's bytes, or the error it carries. */
    byte[] raw(String method, String path, @Nullable Object body) {
        byte[] bytes = body == null ? null : JSON.writeValueAsBytes(body);
        try (DaemonHttp.Response r = checked(http().send(method, path, bytes, "application/json"))) {
            return r.readAll(MAX_ANSWER);
        } catch (IOException e) {
            throw unreachable(method + " " + path, e);
        }
    }

    AirlockException unreachable(String what, IOException e) {
        return new AirlockException(
                "UNREACHABLE",
                0,
                "the Airlock daemon at " + where + " did not answer " + what + ": " + e.getMessage()
                        + (e instanceof DaemonHttp.Unreachable
                                ? " (is it running? `airlock ps` starts one, `airlock serve` serves TCP)"
                                : ""),
                e);
    }

    /** The response if it is a success; else its error, thrown. */
    static DaemonHttp.Response checked(DaemonHttp.Response r) throws IOException {
        if (r.status() / 100 == 2) {
            return r;
        }
        try (r) {
            throw error(r.status(), r.readAll(1 << 20));
        }
    }

    static AirlockException error(int status, byte[] body) {
        try {
            ApiError e = JSON.readValue(body, ApiError.class);
            if (e.error() != null && e.kind() != null) {
                return new AirlockException(e.kind(), status, e.error());
            }
        } catch (JacksonException e) {
            // not an ApiError: said below
        }
        return new AirlockException(
                status == 401 ? "UNAUTHORIZED" : "FAILED",
                status,
                "the daemon answered " + status + ": " + new String(body, StandardCharsets.UTF_8).strip());
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("this Airlock connection is closed");
        }
    }

    static UncheckedIOException unchecked(IOException e) {
        return new UncheckedIOException(e.getMessage(), e);
    }

    /** The API's error body. */
    record ApiError(@Nullable String error, @Nullable String kind) {}
}
