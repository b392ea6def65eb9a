package dev.airlock.service;

import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * The events a daemon-side {@link EventFeed} has not handed out yet, and whether more can come.
 * Bounded: a subscriber that falls {@code limit} events behind is dropped, its feed ending, rather
 * than letting memory grow (a client reading the daemon's stream has the same rule in the SDK's
 * {@code EventStreamReader}).
 */
public final class EventQueue {
    private final LinkedBlockingQueue<SandboxEvent> queue;
    private volatile boolean open = true;

    public EventQueue(int limit) {
        this.queue = new LinkedBlockingQueue<>(limit);
    }

    /** Adds an event; false when the feed has ended, or {@code limit} wait already, which ends it. */
    public boolean offer(SandboxEvent e) {
        if (!open) {
            return false;
        }
        if (queue.offer(e)) {
            return true;
        }
        end();
        return false;
    }

    /** As {@link EventFeed#next}: what is queued first, then waiting only while more can come. */
    public @Nullable SandboxEvent next(Duration wait) throws InterruptedException {
        SandboxEvent e = queue.poll();
        if (e != null || !open) {
            return e;
        }
        return queue.poll(wait.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** As {@link EventFeed#isOpen}: more can come, or some are still queued. */
    public boolean isOpen() {
        return open || !queue.isEmpty();
    }

    /** No more events come; those queued are still handed out. */
    public void end() {
        open = false;
    }
}
