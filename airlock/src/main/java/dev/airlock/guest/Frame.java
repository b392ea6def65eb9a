package dev.airlock.guest;

import java.nio.ByteBuffer;
import java.util.HexFormat;
import org.jspecify.annotations.Nullable;

/**
 * One protocol frame. The payload array is owned by the frame once constructed: callers hand over
 * a fresh array and never change it, which keeps the 100 MB/s data path free of copies.
 */
@SuppressWarnings("ArrayRecordComponent") // ownership is transferred, see above
public record Frame(FrameType type, int flags, int streamId, byte[] payload) {
    public static final int HEADER_SIZE = 12;
    public static final int MAX_PAYLOAD = 65536;
    public static final int FLAG_EOF = 1;

    private static final byte[] EMPTY = new byte[0];

    public Frame {
        String problem = problem(type, flags, streamId, payload.length);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
    }

    public static Frame of(FrameType type, int streamId, byte[] payload) {
        return new Frame(type, 0, streamId, payload);
    }

    public static Frame empty(FrameType type, int streamId, int flags) {
        return new Frame(type, flags, streamId, EMPTY);
    }

    public boolean eof() {
        return (flags & FLAG_EOF) != 0;
    }

    /** The payload as a read-only big-endian buffer, for decoding fixed fields. */
    public ByteBuffer buffer() {
        return ByteBuffer.wrap(payload).asReadOnlyBuffer();
    }

    /**
     * Why a header with these fields is malformed, or null if it is fine. Shared by the constructor
     * (programming errors) and {@link FrameReader} (hostile input) so both apply the same rules.
     */
    static @Nullable String problem(FrameType type, int flags, int streamId, int payloadLength) {
        if ((flags & ~FLAG_EOF) != 0) {
            return String.format("frame %s has unknown flag bits set: 0x%02X", type.describe(), flags);
        }
        if (payloadLength > MAX_PAYLOAD) {
            return "frame " + type.describe() + " payload of " + payloadLength + " bytes exceeds " + MAX_PAYLOAD;
        }
        switch (type.scope()) {
            case SESSION -> {
                if (streamId != 0) {
                    return "frame " + type.describe() + " belongs to stream 0, not stream "
                            + Integer.toUnsignedString(streamId);
                }
            }
            case STREAM -> {
                if (streamId == 0) {
                    return "frame " + type.describe() + " needs a non-zero stream id";
                }
            }
            case ANY -> {}
        }
        if (payloadLength < type.minPayload()) {
            return "frame " + type.describe() + " payload of " + payloadLength + " bytes is shorter than the "
                    + type.minPayload() + " it requires";
        }
        if (payloadLength > type.maxPayload()) {
            return "frame " + type.describe() + " payload of " + payloadLength + " bytes exceeds its limit of "
                    + type.maxPayload();
        }
        return null;
    }

    @Override
    public String toString() {
        String shown = payload.length <= 16
                ? HexFormat.of().formatHex(payload)
                : HexFormat.of().formatHex(payload, 0, 16) + "…";
        return "Frame[" + type.describe() + ", flags=" + flags + ", stream=" + Integer.toUnsignedString(streamId) + ", "
                + payload.length + " bytes " + shown + "]";
    }
}
