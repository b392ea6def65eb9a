package dev.airlock.sdk;

import dev.airlock.sdk.http.DaemonHttp;
import dev.airlock.sdk.http.EventStreamReader;
import java.io.IOException;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Sandbox lifecycle events as the daemon reports them (its server-sent events), from the moment
 * this stream opened. It holds a connection: close it when done. A reader that falls 10,000
 * events behind loses the stream ({@link #isOpen()} turns false) and may open another.
 */
public final class EventStream implements AutoCloseable {
    /** Events read but not taken yet; a reader that falls this far behind loses the stream. */
    private static final int QUEUE_LIMIT = 10_000;
    /** One event is a sandbox's record, a few KiB. */
    private static final int MAX_EVENT = 1 << 20;

    private final EventStreamReader<SandboxEvent> reader;

    EventStream(Airlock airlock, @Nullable String sandboxId) {
        String path = "/v1/events" + (sandboxId == null ? "" : "?sandbox=" + Airlock.encode(sandboxId));
        DaemonHttp.Response response;
        try {
            response = Airlock.checked(airlock.http().send("GET", path, null, ""));
        } catch (IOException e) {
            throw airlock.unreachable("GET " + path, e);
        }
        this.reader = new EventStreamReader<>(
                response, "sandbox", data -> Airlock.JSON.readValue(data, SandboxEvent.class), QUEUE_LIMIT, MAX_EVENT);
    }

    /** The next event, waiting up to {@code wait}; null when none came (or the stream ended). */
    public @Nullable SandboxEvent next(Duration wait) throws InterruptedException {
        return reader.next(wait);
    }

    /** Whether more events may come. */
    public boolean isOpen() {
        return reader.isOpen();
    }

    @Override
    public void close() {
        reader.close();
    }
}
