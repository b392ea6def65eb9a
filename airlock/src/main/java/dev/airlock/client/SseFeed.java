package dev.airlock.client;

import dev.airlock.service.EventFeed;
import dev.airlock.service.EventQueue;
import dev.airlock.service.SandboxEvent;
import dev.airlock.wire.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Sandbox events from the daemon's {@code GET /v1/events} stream (server-sent events): a thread
 * reads the {@code data:} of each {@code sandbox} event into a queue; the feed ends with the
 * stream.
 */
final class SseFeed implements EventFeed {
    /** Events read but not taken yet; a reader that falls this far behind loses the feed. */
    private static final int QUEUE_LIMIT = 10_000;

    private final UnixHttp.Response response;
    private final EventQueue queue = new EventQueue(QUEUE_LIMIT);

    SseFeed(UnixHttp.Response response) {
        this.response = response;
        Thread.ofVirtual().name("airlock-events").start(this::read);
    }

    private void read() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            String event = null;
            StringBuilder data = new StringBuilder();
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isEmpty()) {
                    if ("sandbox".equals(event) && !data.isEmpty()) {
                        if (!queue.offer(Json.MAPPER.readValue(data.toString(), SandboxEvent.class))) {
                            return;
                        }
                    }
                    event = null;
                    data.setLength(0);
                } else if (line.startsWith("event:")) {
                    event = line.substring(6).strip();
                } else if (line.startsWith("data:")) {
                    data.append(line.substring(5).strip());
                }
            }
        } catch (IOException | RuntimeException e) {
            // The stream ended (closed by this side, or the daemon went away).
        } finally {
            queue.end();
        }
    }

    @Override
    public @Nullable SandboxEvent next(Duration wait) throws InterruptedException {
        return queue.next(wait);
    }

    @Override
    public boolean isOpen() {
        return queue.isOpen();
    }

    @Override
    public void close() {
        queue.end();
        try {
            response.close();
        } catch (IOException e) {
            // Already closed.
        }
    }
}
