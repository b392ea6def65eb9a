package dev.airlock.guest;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/** Writes whole frames to one byte stream; safe for many threads, frames never interleave. */
public final class FrameWriter {
    private final WritableByteChannel sink;
    private final ReentrantLock lock = new ReentrantLock();
    private final ByteBuffer header = ByteBuffer.allocateDirect(Frame.HEADER_SIZE);

    public FrameWriter(WritableByteChannel sink) {
        this.sink = sink;
    }

    public FrameWriter(OutputStream sink) {
        this(Channels.newChannel(sink));
    }

    public void write(Frame frame) throws IOException {
        lock.lock();
        try {
            writeLocked(frame);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes unless another writer holds the stream for longer than {@code millis}; used for the
     * courtesy ERROR before closing, which must not wait behind a peer that stopped reading.
     */
    boolean tryWrite(Frame frame, long millis) throws IOException, InterruptedException {
        if (!lock.tryLock(millis, TimeUnit.MILLISECONDS)) {
            return false;
        }
        try {
            writeLocked(frame);
            return true;
        } finally {
            lock.unlock();
        }
    }

    private void writeLocked(Frame frame) throws IOException {
        header.clear();
        header.putInt(frame.payload().length)
                .put((byte) frame.type().code())
                .put((byte) frame.flags())
                .putShort((short) 0)
                .putInt(frame.streamId());
        header.flip();
        ByteBuffer payload = ByteBuffer.wrap(frame.payload());
        if (sink instanceof GatheringByteChannel gathering) {
            ByteBuffer[] parts = {header, payload};
            while (payload.hasRemaining() || header.hasRemaining()) {
                gathering.write(parts);
            }
        } else {
            while (header.hasRemaining()) {
                sink.write(header);
            }
            while (payload.hasRemaining()) {
                sink.write(payload);
            }
        }
    }
}
