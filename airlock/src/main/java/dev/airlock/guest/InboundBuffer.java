package dev.airlock.guest;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.jspecify.annotations.Nullable;

/**
 * The agent → host data of one stream, waiting for its consumer. The reader thread only appends
 * here and never waits, so a slow consumer stalls only its own stream; the size stays bounded
 * because the agent may not send beyond the window, which is checked on every append and
 * re-opened only as the consumer returns credit.
 */
final class InboundBuffer {
    static final int WINDOW = 262144;
    // Return credit in batches so a stream of small frames does not double the frame count.
    private static final int CREDIT_BATCH = 32768;

    /** What a consumer takes: data, or the stream's final frame. */
    sealed interface Item permits Chunk, End {}

    record Chunk(FrameType type, byte[] bytes) implements Item {}

    /** The final frame, already decoded by the stream that owns this buffer. */
    record End(Object outcome) implements Item {}

    private final int streamId;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ArrayDeque<Item> items = new ArrayDeque<>();
    private int window = WINDOW;
    private int pendingCredit;
    private boolean ended;
    private @Nullable IOException failure;

    InboundBuffer(int streamId) {
        this.streamId = streamId;
    }

    /** Reader thread: queue data, or reject it if it overruns the window. */
    void offer(FrameType type, byte[] bytes) throws ProtocolException {
        lock.lock();
        try {
            if (ended) {
                throw new ProtocolException("frame " + type.describe() + " after the final frame on stream "
                        + Integer.toUnsignedString(streamId));
            }
            if (bytes.length > window) {
                throw new ProtocolException("stream " + Integer.toUnsignedString(streamId) + " sent " + bytes.length
                        + " bytes with only " + window + " left in its window");
            }
            window -= bytes.length;
            if (bytes.length > 0) {
                items.add(new Chunk(type, bytes));
                changed.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    /** Reader thread: queue the final frame's outcome; after this no credit is returned. */
    void end(Object outcome) {
        lock.lock();
        try {
            ended = true;
            items.add(new End(outcome));
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Wakes the consumer with this failure; queued items are dropped since the stream is dead. */
    void fail(IOException cause) {
        lock.lock();
        try {
            if (failure == null) {
                failure = cause;
            }
            items.clear();
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Consumer: the next item, waiting for one if needed. */
    Item take() throws IOException, InterruptedException {
        lock.lock();
        try {
            while (true) {
                if (failure != null) {
                    throw failure;
                }
                Item item = items.poll();
                if (item != null) {
                    return item;
                }
                changed.await();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Consumer: these bytes reached their sink. Returns how much credit to send now, 0 for none;
     * the window is re-opened only by credit actually sent, so the host's view never exceeds the
     * agent's.
     */
    int consumed(int bytes) {
        lock.lock();
        try {
            if (ended) {
                // The agent has forgotten the stream; credit for it would be a frame for no stream.
                return 0;
            }
            pendingCredit += bytes;
            if (pendingCredit >= CREDIT_BATCH || items.isEmpty()) {
                int credit = pendingCredit;
                pendingCredit = 0;
                window += credit;
                return credit;
            }
            return 0;
        } finally {
            lock.unlock();
        }
    }
}
