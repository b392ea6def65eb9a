package dev.airlock.guest;

import java.io.IOException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.jspecify.annotations.Nullable;

/** How many bytes the host may still send on one stream (STDIN or FILE_DATA). */
final class SendWindow {
    private static final long MAX_WINDOW = 1L << 31;

    private final int streamId;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition opened = lock.newCondition();
    private long available = InboundBuffer.WINDOW;
    private @Nullable IOException closed;

    SendWindow(int streamId) {
        this.streamId = streamId;
    }

    /** Waits until some window is open, takes up to {@code wanted} bytes of it, returns how many. */
    int acquire(int wanted) throws IOException, InterruptedException {
        lock.lock();
        try {
            while (available == 0 && closed == null) {
                opened.await();
            }
            if (closed != null) {
                throw closed;
            }
            int granted = (int) Math.min(wanted, available);
            available -= granted;
            return granted;
        } finally {
            lock.unlock();
        }
    }

    /** Gives back what an {@link #acquire} took but did not send. */
    void release(int unused) {
        lock.lock();
        try {
            available += unused;
            opened.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Reader thread: the agent returned credit. */
    void grant(long bytes) throws ProtocolException {
        lock.lock();
        try {
            if (available + bytes > MAX_WINDOW) {
                throw new ProtocolException("CREDIT of " + bytes + " on stream " + Integer.toUnsignedString(streamId)
                        + " would raise the window to " + (available + bytes) + ", above 2^31");
            }
            available += bytes;
            opened.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** No more sending: writers waiting or arriving later get this exception. */
    void close(IOException reason) {
        lock.lock();
        try {
            if (closed == null) {
                closed = reason;
            }
            opened.signalAll();
        } finally {
            lock.unlock();
        }
    }
}
