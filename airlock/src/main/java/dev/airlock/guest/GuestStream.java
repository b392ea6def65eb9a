package dev.airlock.guest;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The host's state for one open stream. The reader thread calls {@link #onFrame} for every frame
 * on the stream and must never block there; anything that waits happens on other threads.
 */
abstract sealed class GuestStream permits ExecStream, FileReadStream, FileWriteStream, QueryStream, SocketStream {
    final GuestChannel channel;
    final int id;

    GuestStream(GuestChannel channel, int id) {
        this.channel = channel;
        this.id = id;
    }

    /** For messages: "exec stream 7". */
    abstract String describe();

    /** Reader thread: one frame for this stream; throwing ends the session. */
    abstract void onFrame(Frame frame) throws ProtocolException;

    /** The session ended, or a deadline passed: wake and fail everything waiting on this stream. */
    abstract void fail(IOException cause);

    final ProtocolException unexpected(Frame frame) {
        return new ProtocolException("unexpected " + frame.type().describe() + " on " + describe());
    }

    /** Hands consumed bytes back to the agent as credit, batched by the buffer. */
    final void returnCredit(InboundBuffer inbound, int bytes) {
        int credit = inbound.consumed(bytes);
        if (credit > 0) {
            channel.sendQuietly(Frame.of(
                    FrameType.CREDIT, id, ByteBuffer.allocate(4).putInt(credit).array()));
        }
    }

    static int u32AsInt(byte[] payload, int offset) {
        return ByteBuffer.wrap(payload, offset, 4).getInt();
    }

    static long u32(byte[] payload) {
        return Integer.toUnsignedLong(ByteBuffer.wrap(payload).getInt());
    }
}
