package dev.airlock.api;

import dev.airlock.service.EventFeed;
import dev.airlock.service.SandboxEvent;
import dev.airlock.wire.Json;
import dev.airlock.wire.Protocol;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.eclipse.jetty.http.HttpHeader;
import org.jspecify.annotations.Nullable;

/**
 * {@code GET /v1/events[?sandbox=REF]}: sandbox lifecycle events as server-sent events (the
 * WHATWG HTML living standard's {@code text/event-stream}): one {@code event: sandbox} per
 * change with its {@link SandboxEvent} as {@code data} and its sequence number as {@code id}. A
 * comment line every 15 s keeps proxies from closing a quiet stream and finds a client that has
 * gone away. The stream ends when the daemon drops a client that fell far behind; it reconnects.
 */
final class EventRoute {
    private static final Duration KEEPALIVE = Duration.ofSeconds(15);

    private EventRoute() {}

    static @Nullable Object run(HttpApi api, HttpApi.Call c) throws IOException, InterruptedException {
        try (EventFeed feed = api.service().events(c.query("sandbox"))) {
            c.response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
            OutputStream out = c.stream(200, Protocol.EVENT_STREAM);
            out.write(": airlock sandbox events\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
            while (feed.isOpen()) {
                SandboxEvent e = feed.next(KEEPALIVE);
                String chunk = e == null
                        ? ": keepalive\n\n"
                        : "id: " + e.seq() + "\nevent: sandbox\ndata: " + Json.MAPPER.writeValueAsString(e) + "\n\n";
                // A client that went away makes this throw, which ends the subscription.
                out.write(chunk.getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
            out.close();
        }
        return null;
    }
}
