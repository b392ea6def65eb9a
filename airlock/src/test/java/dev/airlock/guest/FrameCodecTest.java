package dev.airlock.guest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FrameCodecTest {

    private static byte[] encode(Frame... frames) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        FrameWriter writer = new FrameWriter(out);
        for (Frame frame : frames) {
            writer.write(frame);
        }
        return out.toByteArray();
    }

    private static byte[] header(long length, int type, int flags, int reserved, int stream) {
        return ByteBuffer.allocate(12)
                .putInt((int) length)
                .put((byte) type)
                .put((byte) flags)
                .putShort((short) reserved)
                .putInt(stream)
                .array();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    private static FrameReader hostReader(byte[] bytes) {
        return new FrameReader(new ByteArrayInputStream(bytes), FrameType.Direction.TO_HOST);
    }

    @Test
    void framesRoundTripInOrder() throws IOException {
        byte[] big = new byte[Frame.MAX_PAYLOAD];
        new Random(1).nextBytes(big);
        Frame[] frames = {
            Frame.of(FrameType.STDOUT, 7, big),
            new Frame(FrameType.DATA, Frame.FLAG_EOF, -1, new byte[] {1, 2, 3}),
            Frame.of(FrameType.PONG, 0, new byte[0]),
            Frame.of(FrameType.EXIT, 3, new byte[9]),
            Frame.of(FrameType.ERROR, 0, new byte[] {0, 0, 0, 71, 'x'}),
        };
        FrameReader reader = hostReader(encode(frames));
        for (Frame expected : frames) {
            Frame actual = reader.read();
            assertThat(actual.type()).isEqualTo(expected.type());
            assertThat(actual.flags()).isEqualTo(expected.flags());
            assertThat(actual.streamId()).isEqualTo(expected.streamId());
            assertThat(actual.payload()).isEqualTo(expected.payload());
        }
        assertThatThrownBy(reader::read).isExactlyInstanceOf(EOFException.class);
    }

    @Test
    void headerLayoutIsBigEndian() throws IOException {
        byte[] bytes = encode(new Frame(FrameType.STDIN, Frame.FLAG_EOF, 0x01020304, new byte[] {9}));
        assertThat(bytes).containsExactly(0, 0, 0, 1, 0x11, 1, 0, 0, 1, 2, 3, 4, 9);
    }

    @Test
    void everyTypeMapsBackFromItsCode() {
        for (FrameType type : FrameType.values()) {
            assertThat(FrameType.fromCode(type.code())).isEqualTo(type);
        }
        assertThat(FrameType.fromCode(0x4F)).isNull();
        assertThat(FrameType.fromCode(300)).isNull();
    }

    @Test
    void rejectsLengthAboveCapBeforeReadingPayload() {
        // No payload follows: the reader must not wait for (or allocate) 4 GiB.
        assertThatThrownBy(() -> hostReader(header(0xFFFFFFFFL, 0x84, 0, 0, 1)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessageContaining("frame length 4294967295 exceeds the maximum of 65536");
        assertThatThrownBy(() -> hostReader(header(65537, 0x84, 0, 0, 1)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessageContaining("65537 exceeds");
    }

    @Test
    void acceptsPayloadOfExactlyTheCap() throws IOException {
        byte[] bytes = concat(header(65536, 0x91, 0, 0, 5), new byte[65536]);
        assertThat(hostReader(bytes).read().payload()).hasSize(65536);
    }

    @Test
    void rejectsUnknownType() {
        assertThatThrownBy(() -> hostReader(header(0, 0x4F, 0, 0, 1)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("unknown frame type 0x4F");
    }

    @Test
    void rejectsWrongDirection() {
        assertThatThrownBy(() -> hostReader(header(0, 0x10, 0, 0, 1)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("frame EXEC (0x10) is sent host → agent, not agent → host");
        FrameReader agentSide =
                new FrameReader(new ByteArrayInputStream(header(0, 0x84, 0, 0, 1)), FrameType.Direction.TO_AGENT);
        assertThatThrownBy(agentSide::read).hasMessageContaining("STDOUT (0x84) is sent agent → host");
    }

    @Test
    void rejectsReservedAndUnknownFlagBits() {
        assertThatThrownBy(() -> hostReader(header(0, 0x84, 0, 1, 1)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("frame STDOUT (0x84) has reserved header bits set: 0x0001");
        assertThatThrownBy(() -> hostReader(header(0, 0x84, 2, 0, 1)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("frame STDOUT (0x84) has unknown flag bits set: 0x02");
    }

    @Test
    void rejectsWrongKindOfStreamId() {
        assertThatThrownBy(() -> hostReader(concat(header(0, 0x82, 0, 0, 3))).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("frame PONG (0x82) belongs to stream 0, not stream 3");
        assertThatThrownBy(() -> hostReader(concat(header(0, 0x84, 0, 0, 0))).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("frame STDOUT (0x84) needs a non-zero stream id");
    }

    @Test
    void rejectsPayloadShorterThanTypeRequires() {
        assertThatThrownBy(() -> hostReader(concat(header(8, 0x86, 0, 0, 1), new byte[8]))
                        .read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("frame EXIT (0x86) payload of 8 bytes is shorter than the 9 it requires");
        assertThatThrownBy(() -> hostReader(concat(header(65, 0x82, 0, 0, 0), new byte[65]))
                        .read())
                .isInstanceOf(ProtocolException.class)
                .hasMessageContaining("PONG (0x82) payload of 65 bytes exceeds its limit of 64");
    }

    @Test
    void rejectsTruncation() {
        assertThatThrownBy(() -> hostReader(concat(header(100, 0x84, 0, 0, 1), new byte[40]))
                        .read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("stream ended inside the payload of frame STDOUT (0x84) after 40 of 100 bytes");
        assertThatThrownBy(() ->
                        hostReader(Arrays.copyOf(header(0, 0x84, 0, 0, 1), 5)).read())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("stream ended inside a frame header after 5 of 12 bytes");
    }

    @Test
    void constructorRejectsWhatTheReaderRejects() {
        assertThatThrownBy(() -> Frame.of(FrameType.STDOUT, 1, new byte[65537]))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Frame(FrameType.STDIN, 4, 1, new byte[0]))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Frame.of(FrameType.HELLO, 1, new byte[4]))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void tlvRoundTripsEveryWidth() throws ProtocolException {
        byte[] payload = new Tlv.Writer()
                .string(1, "héllo")
                .u8(2, 0xFE)
                .u16(3, 0xFFFE)
                .u32(4, 0xFFFFFFFEL)
                .u64(5, Long.MAX_VALUE)
                .bytes(0xFFFF, new byte[0])
                .toPayload();
        List<Tlv> entries = Tlv.parse(payload);
        assertThat(entries).extracting(Tlv::tag).containsExactly(1, 2, 3, 4, 5, 0xFFFF);
        assertThat(entries.get(0).string()).isEqualTo("héllo");
        assertThat(entries.get(1).u8()).isEqualTo(0xFE);
        assertThat(entries.get(2).u16()).isEqualTo(0xFFFE);
        assertThat(entries.get(3).u32()).isEqualTo(0xFFFFFFFEL);
        assertThat(entries.get(4).u64()).isEqualTo(Long.MAX_VALUE);
        assertThat(entries.get(5).value()).isEmpty();
    }

    @Test
    void tlvOverrunIsRejected() {
        byte[] overrun = ByteBuffer.allocate(10).putShort((short) 1).putInt(5).array();
        assertThatThrownBy(() -> Tlv.parse(overrun))
                .isInstanceOf(ProtocolException.class)
                .hasMessage("TLV tag 1 at offset 0 claims 5 bytes but only 4 remain in the payload");
        byte[] huge = ByteBuffer.allocate(6).putShort((short) 2).putInt(-1).array();
        assertThatThrownBy(() -> Tlv.parse(huge)).hasMessageContaining("claims 4294967295 bytes");
        assertThatThrownBy(() -> Tlv.parse(new byte[] {0, 1, 0}))
                .isInstanceOf(ProtocolException.class)
                .hasMessage("TLV entry header at offset 0 needs 6 bytes, only 3 left");
    }

    @Test
    void tlvValuesOfWrongWidthOrWithNulAreRejected() throws ProtocolException {
        Tlv threeBytes =
                Tlv.parse(new Tlv.Writer().bytes(12, new byte[3]).toPayload()).getFirst();
        assertThatThrownBy(threeBytes::u64)
                .isInstanceOf(ProtocolException.class)
                .hasMessage("TLV tag 12 has 3 bytes where 8 are required");
        assertThatThrownBy(() -> new Tlv(1, new byte[] {'a', 0}).string())
                .isInstanceOf(ProtocolException.class)
                .hasMessage("TLV tag 1 string contains a NUL byte");
        assertThatThrownBy(() -> new Tlv.Writer().string(1, "a\0b")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void oversizedRequestIsRefusedBeforeSending() {
        ExecSpec spec = ExecSpec.of("echo", "x".repeat(70_000));
        assertThatThrownBy(spec::toPayload)
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("does not fit in one 65536-byte frame");
    }

    @Test
    void execSpecEncodesEveryField() throws ProtocolException {
        ExecSpec spec = ExecSpec.builder("sh", "-c", "true")
                .env("A", "1")
                .cwd("/tmp")
                .user("1000:1000")
                .timeout(java.time.Duration.ofMillis(1500))
                .tty(24, 80)
                .stdin(true)
                .build();
        List<Tlv> fields = Tlv.parse(spec.toPayload());
        assertThat(fields).extracting(Tlv::tag).containsExactly(1, 1, 1, 2, 3, 4, 5, 6, 7);
        assertThat(fields.get(3).string()).isEqualTo("A=1");
        assertThat(fields.get(6).u64()).isEqualTo(1500);
        assertThat(fields.get(7).value()).containsExactly(0, 24, 0, 80);
        assertThat(fields.get(8).u8()).isEqualTo(1);
    }

    @Test
    void listingGroupsFieldsByName() throws ProtocolException {
        byte[] payload = new Tlv.Writer()
                .string(FileFields.NAME, "a")
                .u8(FileFields.TYPE, 'f')
                .u64(FileFields.SIZE, 3)
                .u32(FileFields.MODE, 0100644)
                .u64(FileFields.MTIME, 1_500_000_000L)
                .bytes(99, new byte[] {1})
                .string(FileFields.NAME, "b")
                .u8(FileFields.TYPE, 'd')
                .u64(FileFields.SIZE, 0)
                .u32(FileFields.MODE, 040755)
                .u64(FileFields.MTIME, 0)
                .toPayload();
        List<DirEntry> entries = FileFields.listing(Tlv.parse(payload));
        assertThat(entries).extracting(DirEntry::name).containsExactly("a", "b");
        assertThat(entries.get(0).stat().permissions()).isEqualTo(0644);
        assertThat(entries.get(1).stat().type()).isEqualTo(FileType.DIRECTORY);
        byte[] incomplete = new Tlv.Writer()
                .string(FileFields.NAME, "a")
                .u8(FileFields.TYPE, 'f')
                .toPayload();
        assertThatThrownBy(() -> FileFields.listing(Tlv.parse(incomplete)))
                .isInstanceOf(ProtocolException.class)
                .hasMessage("LIST entry a lacks one of TYPE, SIZE, MODE, MTIME");
    }
}
