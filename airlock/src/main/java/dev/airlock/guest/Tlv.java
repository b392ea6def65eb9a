package dev.airlock.guest;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One entry of a TLV list ({@code u16 tag, u32 length, value}), with the codec for whole lists.
 * Values are slices copied out of the payload, so an entry never outlives a bounds check.
 */
@SuppressWarnings("ArrayRecordComponent") // decoded values are private copies
public record Tlv(int tag, byte[] value) {
    static final int ENTRY_HEADER = 6;

    public Tlv {
        if (tag < 0 || tag > 0xFFFF) {
            throw new IllegalArgumentException("TLV tag out of range: " + tag);
        }
    }

    /** Splits a payload into entries, in order, unknown tags included (callers skip them). */
    public static List<Tlv> parse(byte[] payload) throws ProtocolException {
        ByteBuffer in = ByteBuffer.wrap(payload);
        List<Tlv> entries = new ArrayList<>();
        while (in.hasRemaining()) {
            int offset = in.position();
            if (in.remaining() < ENTRY_HEADER) {
                throw new ProtocolException("TLV entry header at offset " + offset + " needs " + ENTRY_HEADER
                        + " bytes, only " + in.remaining() + " left");
            }
            int tag = Short.toUnsignedInt(in.getShort());
            long length = Integer.toUnsignedLong(in.getInt());
            if (length > in.remaining()) {
                throw new ProtocolException("TLV tag " + tag + " at offset " + offset + " claims " + length
                        + " bytes but only " + in.remaining() + " remain in the payload");
            }
            byte[] value = new byte[(int) length];
            in.get(value);
            entries.add(new Tlv(tag, value));
        }
        return entries;
    }

    public int u8() throws ProtocolException {
        requireLength(1);
        return Byte.toUnsignedInt(value[0]);
    }

    public int u16() throws ProtocolException {
        requireLength(2);
        return Short.toUnsignedInt(ByteBuffer.wrap(value).getShort());
    }

    public long u32() throws ProtocolException {
        requireLength(4);
        return Integer.toUnsignedLong(ByteBuffer.wrap(value).getInt());
    }

    /** A u64; values above {@code Long.MAX_VALUE} are malformed since no field can need them. */
    public long u64() throws ProtocolException {
        requireLength(8);
        long result = ByteBuffer.wrap(value).getLong();
        if (result < 0) {
            throw new ProtocolException(
                    "TLV tag " + tag + " u64 value " + Long.toUnsignedString(result) + " is out of range");
        }
        return result;
    }

    /**
     * The value as text. Invalid UTF-8 is replaced rather than rejected: Linux file names are bytes,
     * and one odd name in a listing should not end the session.
     */
    public String string() throws ProtocolException {
        for (byte b : value) {
            if (b == 0) {
                throw new ProtocolException("TLV tag " + tag + " string contains a NUL byte");
            }
        }
        return new String(value, StandardCharsets.UTF_8);
    }

    private void requireLength(int expected) throws ProtocolException {
        if (value.length != expected) {
            throw new ProtocolException(
                    "TLV tag " + tag + " has " + value.length + " bytes where " + expected + " are required");
        }
    }

    /** Builds a TLV list; {@link #toPayload()} enforces the frame payload cap. */
    public static final class Writer {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        public Writer bytes(int tag, byte[] value) {
            if (tag < 0 || tag > 0xFFFF) {
                throw new IllegalArgumentException("TLV tag out of range: " + tag);
            }
            ByteBuffer header = ByteBuffer.allocate(ENTRY_HEADER);
            header.putShort((short) tag).putInt(value.length);
            out.writeBytes(header.array());
            out.writeBytes(value);
            return this;
        }

        public Writer string(int tag, String value) {
            if (value.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("protocol strings cannot contain NUL: " + value.replace('\0', '@'));
            }
            return bytes(tag, value.getBytes(StandardCharsets.UTF_8));
        }

        public Writer u8(int tag, int value) {
            return bytes(tag, new byte[] {(byte) value});
        }

        public Writer u16(int tag, int value) {
            return bytes(tag, ByteBuffer.allocate(2).putShort((short) value).array());
        }

        public Writer u32(int tag, long value) {
            return bytes(tag, ByteBuffer.allocate(4).putInt((int) value).array());
        }

        public Writer u64(int tag, long value) {
            return bytes(tag, ByteBuffer.allocate(8).putLong(value).array());
        }

        public int size() {
            return out.size();
        }

        /**
         * The encoded list.
         *
         * @throws IllegalArgumentException if it does not fit in one frame
         */
        public byte[] toPayload() {
            if (out.size() > Frame.MAX_PAYLOAD) {
                throw new IllegalArgumentException(
                        "request of " + out.size() + " bytes does not fit in one " + Frame.MAX_PAYLOAD + "-byte frame");
            }
            return out.toByteArray();
        }
    }
}
