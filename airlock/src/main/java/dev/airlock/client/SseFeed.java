package dev.airlock.client;

import dev.airlock.sdk.http.DaemonHttp;
import dev.airlock.sdk.http.EventStreamReader;
import dev.airlock.service.EventFeed;
import dev.airlock.service.SandboxEvent;
import dev.airlock.wire.Json;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Sandbox events from the daemon's {@code GET /v1/events} stream, as the service's
 * {@link EventFeed}: the SDK's reader of the stream, decoding into the service's own event type.
 */
final class SseFeed implements EventFeed {
    /** Events read but not taken yet; a reader that falls this far behind loses the feed. */
    private static final int QUEUE_LIMIT = 10_000;
    /** One event is a sandbox's record, a few KiB. */
    private static final int MAX_EVENT = 1 << 20;

    private final EventStreamReader<SandboxEvent> reader;

    SseFeed(DaemonHttp.Response response) {
        this.reader = new EventStreamReader<>(
                response, "sandbox", data -> Json.MAPPER.readValue(data, SandboxEvent.class), QUEUE_LIMIT, MAX_EVENT);
    }

    @Override
    public @Nullable SandboxEvent next(Duration wait) throws InterruptedException {
        return reader.next(wait);
    }

    @Override
    public boolean isOpen() {
        return reader.isOpen();
    }

    @Override
    public void close() {
        reader.close();
    }
}
