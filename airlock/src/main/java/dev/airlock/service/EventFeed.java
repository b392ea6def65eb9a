package dev.airlock.service;

import java.io.IOException;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * A subscription to sandbox events, in the order they happened. A subscriber that falls far
 * behind is dropped: its feed ends ({@link #isOpen()} false), and it subscribes again and
 * compares the list of sandboxes. Closing it ends the subscription.
 */
public interface EventFeed extends AutoCloseable {
    /** The next event, waiting up to {@code wait}; null when none came in that time or the feed ended. */
    @Nullable
    SandboxEvent next(Duration wait) throws IOException, InterruptedException;

    boolean isOpen();

    @Override
    void close();
}
