package dev.airlock.sdk;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * Sandbox lifecycle events as the daemon reports them (its server-sent events), from the moment
 * this stream opened. It holds a connection: close it when done.
 */
public final class EventStream implements AutoCloseable {
    private final Http.Response response;
    private final LinkedBlockingQueue<SandboxEvent> queue = new LinkedBlockingQueue<>();
    private volatile boolean open = true;

    EventStream(Airlock airlock, @Nullable String sandboxId) {
        String path = "/v1/events" + (sandboxId == null ? "" : "?sandbox=" + Airlock.encode(sandboxId));
        try {
            this.response = Airlock.checked(airlock.http().send("GET", path, null, ""));
        } catch (IOException e) {
            throw airlock.unreachable("GET " + path, e);
        }
        Thread.ofVirtual().name("airlock-events").start(this::read);
    }

    private void read() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            String event = null;
            StringBuilder data = new StringBuilder();
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isEmpty()) {
                    if ("sandbox".equals(event) && !data.isEmpty()) {
                        queue.add(Airlock.JSON.readValue(data.toString(), SandboxEvent.class));
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
            // closed here, or the daemon went away: the stream ends
        } finally {
            open = false;
        }
    }

    /** The next event, waiting up to {@code wait}; null when none came (or the stream ended). */
    public @Nullable SandboxEvent next(Duration wait) throws InterruptedException {
        SandboxEvent e = queue.poll();
        if (e != null || !open) {
            return e;
        }
        return queue.poll(wait.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Whether more events may come. */
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
