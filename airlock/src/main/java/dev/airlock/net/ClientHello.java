package dev.airlock.net;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads the server name (SNI) out of the first TLS handshake message a client sends, without
 * terminating TLS: the proxy checks it against the name the client asked to CONNECT to.
 *
 * <p>The ClientHello is reassembled from as many handshake records as the client splits it into,
 * up to {@value #MAX_WIRE} bytes on the wire. Anything that is not a well-formed ClientHello
 * within that is {@link Peek.Malformed}, and the proxy refuses it: the check fails closed. The
 * parse is strict where a lax one would let a name past the check that a server reads
 * differently (a second server_name extension, a second name in the list, bytes after the
 * extensions, a name with characters a host name cannot have).
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

    /** How many bytes, record headers included, the proxy reads at most to find a whole ClientHello. */
    public static final int MAX_WIRE = 64 << 10;
    /** The largest TLS plaintext record (RFC 8446 5.1). */
    private static final int MAX_RECORD = 1 << 14;

    private static final int HANDSHAKE = 0x16;
    private static final int CLIENT_HELLO = 1;
    private static final int SERVER_NAME = 0;
    private static final Pattern HOST_NAME = Pattern.compile("[A-Za-z0-9_]([A-Za-z0-9_-]*)(\\.[A-Za-z0-9_-]+)*\\.?");

    /** Looks at the TLS records at the start of {@code data}. */
    public static Peek peek(byte[] data, int length) {
        Assembler a = new Assembler();
        return a.offer(data, 0, length);
    }

    /**
     * Collects the client's first bytes as they arrive (in pieces of any size) until the
     * ClientHello is complete or cannot be; keeps every byte so the caller can pass them on.
     */
    public static final class Assembler {
        private byte[] wire = new byte[4096];
        private int wireLength;
        private byte[] handshake = new byte[4096];
        private int handshakeLength;
        /** Offset in {@link #wire} of the next record header not yet consumed. */
        private int next;

        private Peek result = new Peek.NeedMore();

        /** Adds bytes; returns the verdict so far, which is final once it is not NeedMore. */
        public Peek offer(byte[] b, int off, int len) {
            wire = ensure(wire, wireLength + len);
            System.arraycopy(b, off, wire, wireLength, len);
            wireLength += len;
            if (!(result instanceof Peek.NeedMore)) {
                return result;
            }
            result = advance();
            if (result instanceof Peek.NeedMore && wireLength >= MAX_WIRE) {
                result = new Peek.Malformed("no complete ClientHello within " + MAX_WIRE + " bytes");
            }
            return result;
        }

        /** The verdict when the client ends its side before the ClientHello is complete. */
        public Peek atEnd() {
            if (result instanceof Peek.NeedMore && wireLength > 0) {
                result = new Peek.Malformed("the connection ended inside the ClientHello (" + wireLength + " bytes)");
            }
            return result;
        }

        /** Every byte offered so far, in order. */
        public byte[] bytes() {
            return Arrays.copyOf(wire, wireLength);
        }

        public int size() {
            return wireLength;
        }

        private static byte[] ensure(byte[] buffer, int needed) {
            return needed <= buffer.length ? buffer : Arrays.copyOf(buffer, Math.max(needed, 2 * buffer.length));
        }

        private Peek advance() {
            if (wireLength == 0) {
                return new Peek.NeedMore();
            }
            if ((wire[0] & 0xff) != HANDSHAKE) {
                return new Peek.NotTls();
            }
            while (wireLength - next >= 5) {
                if ((wire[next] & 0xff) != HANDSHAKE) {
                    return new Peek.Malformed("a TLS record other than handshake before the ClientHello ended");
                }
                if (wire[next + 1] != 3) {
                    return new Peek.Malformed("a TLS record of an unknown version");
                }
                int recordLength = ((wire[next + 3] & 0xff) << 8) | (wire[next + 4] & 0xff);
                if (recordLength == 0 || recordLength > MAX_RECORD) {
                    return new Peek.Malformed("a handshake record of " + recordLength + " bytes");
                }
                if (wireLength - next - 5 < recordLength) {
                    return new Peek.NeedMore();
                }
                handshake = ensure(handshake, handshakeLength + recordLength);
                System.arraycopy(wire, next + 5, handshake, handshakeLength, recordLength);
                handshakeLength += recordLength;
                next += 5 + recordLength;
                Peek p = fromHandshake(handshake, handshakeLength);
                if (!(p instanceof Peek.NeedMore)) {
                    return p;
                }
            }
            return new Peek.NeedMore();
        }
    }

    private static Peek fromHandshake(byte[] h, int length) {
        if (length < 4) {
            return new Peek.NeedMore();
        }
        if ((h[0] & 0xff) != CLIENT_HELLO) {
            return new Peek.Malformed("the first handshake message is not a ClientHello");
        }
        int msgLength = ((h[1] & 0xff) << 16) | ((h[2] & 0xff) << 8) | (h[3] & 0xff);
        if (msgLength > MAX_WIRE) {
            return new Peek.Malformed("a ClientHello of " + msgLength + " bytes");
        }
        if (length < 4 + msgLength) {
            return new Peek.NeedMore();
        }
        if (length > 4 + msgLength) {
            // Nothing may follow the ClientHello in the client's first flight of handshake records.
            return new Peek.Malformed("handshake bytes after the ClientHello");
        }
        return parse(ByteBuffer.wrap(h, 4, msgLength).slice());
    }

    private static Peek parse(ByteBuffer b) {
        try {
            b.getShort(); // legacy version
            skip(b, 32); // random
            int sessionId = b.get() & 0xff;
            if (sessionId > 32) {
                return new Peek.Malformed("a session id of " + sessionId + " bytes");
            }
            skip(b, sessionId);
            int suites = b.getShort() & 0xffff;
            if (suites < 2 || suites % 2 != 0) {
                return new Peek.Malformed("a cipher suite list of " + suites + " bytes");
            }
            skip(b, suites);
            int compression = b.get() & 0xff;
            if (compression < 1) {
                return new Peek.Malformed("no compression methods");
            }
            skip(b, compression);
            if (!b.hasRemaining()) {
                return new Peek.Hello(Optional.empty());
            }
            int extensionsLength = b.getShort() & 0xffff;
            if (extensionsLength != b.remaining()) {
                return new Peek.Malformed(
                        "extensions of " + extensionsLength + " bytes where " + b.remaining() + " remain");
            }
            Set<Integer> seen = new HashSet<>();
            Optional<String> name = Optional.empty();
            while (b.hasRemaining()) {
                int type = b.getShort() & 0xffff;
                int len = b.getShort() & 0xffff;
                if (len > b.remaining()) {
                    return new Peek.Malformed("extension " + type + " runs past the ClientHello");
                }
                if (!seen.add(type)) {
                    return new Peek.Malformed("extension " + type + " appears twice");
                }
                ByteBuffer ext = b.slice(b.position(), len);
                skip(b, len);
                if (type == SERVER_NAME) {
                    Peek p = serverName(ext);
                    if (p instanceof Peek.Hello hello) {
                        name = hello.serverName();
                    } else {
                        return p;
                    }
                }
            }
            return new Peek.Hello(name);
        } catch (BufferUnderflowException | IllegalArgumentException | IndexOutOfBoundsException e) {
            return new Peek.Malformed("truncated ClientHello");
        }
    }

    /** RFC 6066 3: a list holding exactly one host_name, as servers accept it. */
    private static Peek serverName(ByteBuffer ext) {
        int listLength = ext.getShort() & 0xffff;
        if (listLength != ext.remaining()) {
            return new Peek.Malformed(
                    "a server_name list of " + listLength + " bytes where " + ext.remaining() + " remain");
        }
        int nameType = ext.get() & 0xff;
        if (nameType != 0) {
            return new Peek.Malformed("server_name of unknown type " + nameType);
        }
        int nameLen = ext.getShort() & 0xffff;
        if (nameLen == 0 || nameLen != ext.remaining()) {
            return new Peek.Malformed("server_name must hold exactly one host name");
        }
        byte[] name = new byte[nameLen];
        ext.get(name);
        String s = new String(name, StandardCharsets.ISO_8859_1);
        if (!HOST_NAME.matcher(s).matches()) {
            return new Peek.Malformed("server_name '" + s + "' is not a host name");
        }
        return new Peek.Hello(Optional.of(s.endsWith(".") ? s.substring(0, s.length() - 1) : s));
    }

    private static void skip(ByteBuffer b, int n) {
        b.position(b.position() + n);
    }
}
