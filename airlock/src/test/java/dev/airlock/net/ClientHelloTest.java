package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;

/**
 * The SNI reader against ClientHellos made by the JDK's own TLS client, and against crafted ones:
 * split over many records, larger than a record, truncated, or ambiguous about the name.
 */
class ClientHelloTest {
    static byte[] clientHello(String serverName) throws Exception {
        SSLEngine engine = SSLContext.getDefault().createSSLEngine(serverName, 443);
        engine.setUseClientMode(true);
        SSLParameters params = engine.getSSLParameters();
        params.setServerNames(List.of(new SNIHostName(serverName)));
        engine.setSSLParameters(params);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return bytes;
    }

    // ---- crafted handshakes ----

    static byte[] u16(int v) {
        return new byte[] {(byte) (v >> 8), (byte) v};
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    static byte[] extension(int type, byte[] data) {
        return concat(u16(type), u16(data.length), data);
    }

    /** A server_name extension listing these names (RFC 6066 allows a list; servers take one). */
    static byte[] serverName(String... names) {
        ByteArrayOutputStream list = new ByteArrayOutputStream();
        for (String n : names) {
            byte[] b = n.getBytes(StandardCharsets.ISO_8859_1);
            list.write(0);
            list.writeBytes(u16(b.length));
            list.writeBytes(b);
        }
        return extension(0, concat(u16(list.size()), list.toByteArray()));
    }

    /** A padding extension (RFC 7685) of n zero bytes: how a client makes its hello large. */
    static byte[] padding(int n) {
        return extension(21, new byte[n]);
    }

    /** A ClientHello handshake message (type, 24-bit length, body) with these extensions. */
    static byte[] helloMessage(byte[]... extensions) {
        byte[] ext = concat(extensions);
        byte[] body = concat(
                u16(0x0303),
                new byte[32],
                new byte[] {0},
                u16(2),
                u16(0x1301),
                new byte[] {1, 0},
                u16(ext.length),
                ext);
        return concat(new byte[] {1, (byte) (body.length >> 16), (byte) (body.length >> 8), (byte) body.length}, body);
    }

    /** The handshake bytes in TLS records of at most {@code size} bytes each. */
    static byte[] records(byte[] handshake, int size) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < handshake.length; i += size) {
            int n = Math.min(size, handshake.length - i);
            out.writeBytes(new byte[] {0x16, 3, 1});
            out.writeBytes(u16(n));
            out.write(handshake, i, n);
        }
        return out.toByteArray();
    }

    /** The handshake message inside a one-record hello. */
    static byte[] message(byte[] oneRecord) {
        return Arrays.copyOfRange(oneRecord, 5, oneRecord.length);
    }

    private static ClientHello.Peek byteByByte(byte[] wire) {
        ClientHello.Assembler a = new ClientHello.Assembler();
        ClientHello.Peek p = new ClientHello.Peek.NeedMore();
        for (int i = 0; i < wire.length && p instanceof ClientHello.Peek.NeedMore; i++) {
            p = a.offer(wire, i, 1);
        }
        return p instanceof ClientHello.Peek.NeedMore ? a.atEnd() : p;
    }

    private static String malformed(byte[] wire) {
        ClientHello.Peek p = byteByByte(wire);
        assertThat(p).isInstanceOf(ClientHello.Peek.Malformed.class);
        return ((ClientHello.Peek.Malformed) p).why();
    }

    @Test
    void readsTheServerName() throws Exception {
        byte[] hello = clientHello("api.example.com");
        assertThat(ClientHello.peek(hello, hello.length))
                .isEqualTo(new ClientHello.Peek.Hello(Optional.of("api.example.com")));
    }

    @Test
    void asksForMoreUntilTheWholeHelloIsThere() throws Exception {
        byte[] hello = clientHello("api.example.com");
        assertThat(ClientHello.peek(hello, 3)).isInstanceOf(ClientHello.Peek.NeedMore.class);
        assertThat(ClientHello.peek(hello, hello.length - 1)).isInstanceOf(ClientHello.Peek.NeedMore.class);
    }

    @Test
    void tellsOtherProtocolsApart() {
        byte[] ssh = "SSH-2.0-OpenSSH_9.2\r\n".getBytes(StandardCharsets.US_ASCII);
        assertThat(ClientHello.peek(ssh, ssh.length)).isInstanceOf(ClientHello.Peek.NotTls.class);
        byte[] junk = {0x16, 3, 1, 0, 4, 2, 0, 0, 0};
        assertThat(ClientHello.peek(junk, junk.length)).isInstanceOf(ClientHello.Peek.Malformed.class);
    }

    @Test
    void reassemblesAHelloSplitIntoOneByteRecordsArrivingByteByByte() throws Exception {
        byte[] wire = records(message(clientHello("api.example.com")), 1);
        assertThat(byteByByte(wire)).isEqualTo(new ClientHello.Peek.Hello(Optional.of("api.example.com")));
    }

    @Test
    void readsAHelloLargerThanOneRecord() {
        byte[] wire = records(helloMessage(padding(30_000), serverName("evil.test")), 1 << 14);
        assertThat(ClientHello.peek(wire, wire.length)).isEqualTo(new ClientHello.Peek.Hello(Optional.of("evil.test")));
    }

    @Test
    void failsClosedPastTheCapOrWhenTheClientStopsEarly() throws Exception {
        // A hello that says it is larger than the cap.
        byte[] huge = records(helloMessage(padding(65_000), padding2(20_000), serverName("evil.test")), 1 << 14);
        assertThat(malformed(huge)).contains("ClientHello of");
        // One-byte records: the cap on the wire is reached before the hello is complete.
        byte[] slow = records(helloMessage(padding(20_000), serverName("evil.test")), 1);
        assertThat(malformed(slow)).contains("no complete ClientHello within " + ClientHello.MAX_WIRE);
        // The client ends its side inside the hello.
        byte[] hello = clientHello("evil.test");
        assertThat(malformed(Arrays.copyOf(hello, hello.length / 2))).contains("ended inside the ClientHello");
    }

    private static byte[] padding2(int n) {
        return extension(0xfe01, new byte[n]);
    }

    @Test
    void refusesHellosAServerCouldReadAnotherWay() {
        assertThat(malformed(records(helloMessage(serverName("api.test", "evil.test")), 1 << 14)))
                .contains("exactly one host name");
        assertThat(malformed(records(helloMessage(serverName("api.test"), serverName("evil.test")), 1 << 14)))
                .contains("appears twice");
        assertThat(malformed(records(helloMessage(serverName("api.test\nevil.test")), 1 << 14)))
                .contains("is not a host name");
        assertThat(malformed(records(concat(helloMessage(serverName("api.test")), new byte[] {1, 0, 0, 0}), 1 << 14)))
                .contains("after the ClientHello");
        byte[] zeroRecord = {0x16, 3, 1, 0, 0};
        assertThat(malformed(zeroRecord)).contains("record of 0 bytes");
        byte[] good = records(helloMessage(serverName("api.test")), 10);
        byte[] alert = concat(Arrays.copyOf(good, 15), new byte[] {0x15, 3, 3, 0, 2, 2, 40});
        assertThat(malformed(alert)).contains("other than handshake");
    }
}
