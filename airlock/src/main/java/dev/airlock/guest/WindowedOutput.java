package dev.airlock.guest;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;

/**
 * The host's half of a stream's data (an exec's STDIN, a socket's SOCK_DATA): frames of at most
 * what the agent's window grants, one writer at a time, and an EOF frame on close unless the
 * stream has already ended (after its final frame nothing may be sent on it).
 */
final class WindowedOutput extends OutputStream {
    private final GuestChannel channel;
    private final int id;
    private final FrameType type;
    private final SendWindow window;
    private final BooleanSupplier streamFinished;
    private final String what;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile boolean closed;

    /** {@code what}: the data's name in errors, e.g. "stdin of exec stream 3 (cat)". */
    WindowedOutput(
            GuestChannel channel,
            int id,
            FrameType type,
            SendWindow window,
            BooleanSupplier streamFinished,
            String what) {
        this.channel = channel;
        this.id = id;
        this.type = type;
        this.window = window;
        this.streamFinished = streamFinished;
        this.what = what;
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
        java.util.Objects.checkFromIndexSize(offset, length, bytes.length);
        lock.lock();
        try {
            if (closed) {
                throw new IOException(what + " is closed");
            }
            int done = 0;
            while (done < length) {
                int granted = window.acquire(Math.min(length - done, Frame.MAX_PAYLOAD));
                byte[] part = Arrays.copyOfRange(bytes, offset + done, offset + done + granted);
                channel.send(Frame.of(type, id, part));
                done += granted;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for the agent's window on " + what);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() throws IOException {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            if (!streamFinished.getAsBoolean()) {
                channel.send(Frame.empty(type, id, Frame.FLAG_EOF));
            }
        } finally {
            lock.unlock();
        }
    }
}
