package dev.airlock.net;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * Reads the server name (SNI) out of the first TLS handshake message a client sends, without
 * terminating TLS: the proxy checks it against the name the client asked to CONNECT to.
 */
public final class ClientHello {
    private ClientHello() {}

    /** Result of looking at the bytes received so far. */
    public sealed interface Peek {
        record NeedMore() implements Peek {}

        record NotTls() implements Peek {}

        record Hello(Optional<String> serverName) implements Peek {}

        record Malformed(String why) implements Peek {}
    }

    private static final int MAX_HELLO = 1 << 16;

    /** Looks at the TLS records at the start of {@code data}. */
    public static Peek peek(byte[] data, int length) {
        if (length == 0) {
            return new Peek.NeedMore();
        }
        if ((data[0] & 0xff) != 0x16) {
            return new Peek.NotTls();
        }
        // The handshake message may span several records: collect record payloads.
        ByteBuffer handshake = ByteBuffer.allocate(Math.max(length, 16));
        int pos = 0;
        while (true) {
            if (length - pos < 5) {
                return new Peek.NeedMore();
            }
            if ((data[pos] & 0xff) != 0x16) {
                return new Peek.Malformed("a TLS record other than handshake before the ClientHello ended");
            }
            int recordLength = ((data[pos + 3] & 0xff) << 8) | (data[pos + 4] & 0xff);
            if (length - pos - 5 < recordLength) {
                return new Peek.NeedMore();
            }
            handshake.put(data, pos + 5, recordLength);
            pos += 5 + recordLength;
            if (handshake.position() >= 4) {
                int msgLength = ((handshake.get(1) & 0xff) << 16)
                        | ((handshake.get(2) & 0xff) << 8)
                        | (handshake.get(3) & 0xff);
                if (handshake.get(0) != 1) {
                    return new Peek.Malformed("the first handshake message is not a ClientHello");
                }
                if (msgLength > MAX_HELLO) {
                    return new Peek.Malformed("ClientHello of " + msgLength + " bytes");
                }
                if (handshake.position() >= 4 + msgLength) {
                    return parse(ByteBuffer.wrap(handshake.array(), 4, msgLength));
                }
            }
        }
    }

    private static Peek parse(ByteBuffer b) {
        try {
            b.getShort(); // legacy version
            b.position(b.position() + 32); // random
            skip(b, b.get() & 0xff); // session id
            skip(b, b.getShort() & 0xffff); // cipher suites
            skip(b, b.get() & 0xff); // compression methods
            if (!b.hasRemaining()) {
                return new Peek.Hello(Optional.empty());
            }
            int extEnd = (b.getShort() & 0xffff) + b.position();
            while (b.position() + 4 <= extEnd) {
                int type = b.getShort() & 0xffff;
                int len = b.getShort() & 0xffff;
                if (type != 0) {
                    skip(b, len);
                    continue;
                }
                b.getShort(); // server name list length
                int nameType = b.get() & 0xff;
                int nameLen = b.getShort() & 0xffff;
                if (nameType != 0) {
                    return new Peek.Malformed("server_name of unknown type " + nameType);
                }
                byte[] name = new byte[nameLen];
                b.get(name);
                return new Peek.Hello(Optional.of(new String(name, StandardCharsets.US_ASCII)));
            }
            return new Peek.Hello(Optional.empty());
        } catch (BufferUnderflowException | IllegalArgumentException e) {
            return new Peek.Malformed("truncated ClientHello");
        }
    }

    private static void skip(ByteBuffer b, int n) {
        b.position(b.position() + n);
    }
}
