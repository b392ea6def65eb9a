package dev.airlock.local;

import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.EventFeed;
import dev.airlock.service.EventQueue;
import dev.airlock.service.SandboxEvent;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * Sandbox lifecycle events, found by comparing what the engine lists now with what it listed
 * last: after every operation of the service and on the watchdog's tick (which also sees a VMM
 * that died, a lifetime that ran out, an idle pause). Nothing is compared while nobody listens.
 * Each subscriber has a bounded queue; one that falls that far behind is dropped (its feed
 * ends) rather than letting the daemon's memory grow.
 */
final class SandboxEvents {
    /** Events a subscriber may have waiting before it is dropped. */
    private static final int QUEUE_LIMIT = 10_000;

    private record Seen(String name, SandboxState state) {}

    private final Map<String, Seen> seen = new HashMap<>();
    private final Set<Feed> feeds = ConcurrentHashMap.newKeySet();
    private long seq;

    boolean listened() {
        return !feeds.isEmpty();
    }

    /** A new subscriber; {@code now} is the list it starts from (nothing before it is reported). */
    EventFeed subscribe(@Nullable String sandboxId, Supplier<List<Sandbox>> now) {
        synchronized (this) {
            if (feeds.isEmpty()) {
                seen.clear();
                for (Sandbox s : now.get()) {
                    seen.put(s.id(), new Seen(s.name(), s.state()));
                }
            }
            Feed feed = new Feed(sandboxId);
            feeds.add(feed);
            return feed;
        }
    }

    /**
     * Compares the sandboxes now with the last look and tells every subscriber what changed.
     * Sandboxes in {@code busy} (an operation on them is under way) are left for the look after
     * it, so a half-done stop (its process gone, its record not yet saved) is not reported.
     * {@code now} is read under the same lock as the comparison: a list read before a stop but
     * compared after a later look's would report the stopped sandbox RUNNING again.
     */
    synchronized void observe(Supplier<List<Sandbox>> now, Set<String> busy) {
        if (feeds.isEmpty()) {
            return;
        }
        List<Sandbox> list = now.get();
        Instant at = Instant.now();
        Map<String, Seen> before = new HashMap<>(seen);
        for (Sandbox s : list) {
            Seen old = before.remove(s.id());
            if (busy.contains(s.id())) {
                continue;
            }
            if (old == null) {
                publish(new SandboxEvent(++seq, "created", s.id(), s.name(), s.state(), null, at));
            } else if (old.state() != s.state()) {
                publish(new SandboxEvent(++seq, "state", s.id(), s.name(), s.state(), old.state(), at));
            }
            seen.put(s.id(), new Seen(s.name(), s.state()));
        }
        for (Map.Entry<String, Seen> gone : before.entrySet()) {
            if (busy.contains(gone.getKey())) {
                continue;
            }
            seen.remove(gone.getKey());
            Seen last = gone.getValue();
            publish(new SandboxEvent(++seq, "removed", gone.getKey(), last.name(), last.state(), last.state(), at));
        }
    }

    private void publish(SandboxEvent e) {
        for (Feed f : feeds) {
            if (f.sandboxId == null || f.sandboxId.equals(e.sandbox())) {
                f.offer(e);
            }
        }
    }

    private final class Feed implements EventFeed {
        private final @Nullable String sandboxId;
        private final EventQueue queue = new EventQueue(QUEUE_LIMIT);

        Feed(@Nullable String sandboxId) {
            this.sandboxId = sandboxId;
        }

        void offer(SandboxEvent e) {
            if (!queue.offer(e)) {
                DaemonLog.log("an event subscriber fell " + QUEUE_LIMIT + " events behind: dropping it");
                feeds.remove(this);
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
            feeds.remove(this);
        }
    }
}
