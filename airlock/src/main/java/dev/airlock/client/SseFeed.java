package dev.airlock.client;

import dev.airlock.service.EventFeed;
import dev.airlock.service.SandboxEvent;
import dev.airlock.wire.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * Sandbox events from the daemon's {@code GET /v1/events} stream (server-sent events): a thread
 * reads the {@code data:} of each {@code sandbox} event into a queue; the feed ends with the
 * stream.
 */
final class SseFeed implements EventFeed {
    private final UnixHttp.Response response;
    private final LinkedBlockingQueue<SandboxEvent> queue = new LinkedBlockingQueue<>();
    private volatile boolean open = true;

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
                        queue.add(Json.MAPPER.readValue(data.toString(), SandboxEvent.class));
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
            open = false;
        }
    }

    @Override
    public @Nullable SandboxEvent next(Duration wait) throws InterruptedException {
        SandboxEvent e = queue.poll();
        if (e != null || !open) {
            return e;
        }
        return queue.poll(wait.toNanos(), TimeUnit.NANOSECONDS);
    }

    @Override
    public boolean isOpen() {
        return open || !queue.isEmpty();
    }

    @Override
    public void close() {
        open = false;
        try {
            response.close();
        } catch (IOException e) {
            // Already closed.
        }
    }
}
