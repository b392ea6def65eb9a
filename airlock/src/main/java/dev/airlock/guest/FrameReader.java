package dev.airlock.guest;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;

/**
 * Reads frames from one byte stream, rejecting anything malformed before it can cost memory: the
 * header is checked completely before any payload is read, and the only allocation sized by the
 * peer is the payload array itself, after its length has been capped at 64 KiB.
 *
 * <p>Not thread-safe: one reader thread owns it.
 */
public final class FrameReader {
    private final ReadableByteChannel source;
    private final FrameType.Direction accepted;
    // Big enough for one whole maximal frame, so a frame is usually sliced out of one read(2).
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(Frame.HEADER_SIZE + Frame.MAX_PAYLOAD + 4096);

    /**
     * @param accepted the direction frames on this stream travel: {@code TO_HOST} for a host
     *     reading the agent; frame types sent the other way are malformed.
     */
    public FrameReader(ReadableByteChannel source, FrameType.Direction accepted) {
        this.source = source;
        this.accepted = accepted;
        buffer.flip();
    }

    public FrameReader(InputStream source, FrameType.Direction accepted) {
        this(Channels.newChannel(source), accepted);
    }

    /**
     * The next frame.
     *
     * @throws EOFException if the stream ends cleanly between frames
     * @throws ProtocolException if the frame is malformed or the stream ends inside it
     */
    public Frame read() throws IOException {
        if (!fill(Frame.HEADER_SIZE)) {
            if (buffer.hasRemaining()) {
                throw new ProtocolException("stream ended inside a frame header after " + buffer.remaining() + " of "
                        + Frame.HEADER_SIZE + " bytes");
            }
            throw new EOFException("stream ended");
        }
        long length = Integer.toUnsignedLong(buffer.getInt());
        int code = Byte.toUnsignedInt(buffer.get());
        int flags = Byte.toUnsignedInt(buffer.get());
        int reserved = Short.toUnsignedInt(buffer.getShort());
        int streamId = buffer.getInt();
        if (length > Frame.MAX_PAYLOAD) {
            throw new ProtocolException(String.format(
                    "frame length %d exceeds the maximum of %d (type 0x%02X, stream %s)",
                    length, Frame.MAX_PAYLOAD, code, Integer.toUnsignedString(streamId)));
        }
        FrameType type = FrameType.fromCode(code);
        if (type == null) {
            throw new ProtocolException(String.format("unknown frame type 0x%02X", code));
        }
        if (!type.direction().allows(accepted)) {
            throw new ProtocolException(
                    "frame " + type.describe() + " is sent " + type.direction() + ", not " + accepted);
        }
        if (reserved != 0) {
            throw new ProtocolException(
                    String.format("frame %s has reserved header bits set: 0x%04X", type.describe(), reserved));
        }
        int payloadLength = (int) length;
        String problem = Frame.problem(type, flags, streamId, payloadLength);
        if (problem != null) {
            throw new ProtocolException(problem);
        }
        if (!fill(payloadLength)) {
            throw new ProtocolException("stream ended inside the payload of frame " + type.describe() + " after "
                    + buffer.remaining() + " of " + payloadLength + " bytes");
        }
        byte[] payload = new byte[payloadLength];
        buffer.get(payload);
        return new Frame(type, flags, streamId, payload);
    }

    /** Makes at least {@code wanted} bytes available; false if the stream ended first. */
    private boolean fill(int wanted) throws IOException {
        if (buffer.remaining() >= wanted) {
            return true;
        }
        buffer.compact();
        try {
            while (buffer.position() < wanted) {
                if (source.read(buffer) < 0) {
                    return false;
                }
            }
            return true;
        } finally {
            buffer.flip();
        }
    }
}
