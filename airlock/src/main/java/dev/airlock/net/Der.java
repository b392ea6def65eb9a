package dev.airlock.net;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;

/**
 * The few DER (ITU-T X.690) encodings an X.509 certificate needs. The JDK parses and verifies
 * certificates but has no public API to write one; this is enough to issue the interception
 * CA and its leaf certificates without a cryptography library.
 */
final class Der {
    private Der() {}

    static byte[] tlv(int tag, byte[]... parts) {
        ByteArrayOutputStream content = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            content.writeBytes(p);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(tag);
        int n = content.size();
        if (n < 0x80) {
            out.write(n);
        } else {
            byte[] len = BigInteger.valueOf(n).toByteArray();
            int skip = len[0] == 0 ? 1 : 0;
            out.write(0x80 | (len.length - skip));
            out.write(len, skip, len.length - skip);
        }
        out.writeBytes(content.toByteArray());
        return out.toByteArray();
    }

    static byte[] sequence(byte[]... parts) {
        return tlv(0x30, parts);
    }

    static byte[] set(byte[]... parts) {
        return tlv(0x31, parts);
    }

    static byte[] integer(BigInteger v) {
        return tlv(0x02, v.toByteArray());
    }

    static byte[] bool(boolean v) {
        return tlv(0x01, new byte[] {(byte) (v ? 0xff : 0)});
    }

    static byte[] octets(byte[] v) {
        return tlv(0x04, v);
    }

    /** A BIT STRING of whole bytes, or with {@code unused} low bits of the last byte unused. */
    static byte[] bits(int unused, byte[] v) {
        byte[] content = new byte[v.length + 1];
        content[0] = (byte) unused;
        System.arraycopy(v, 0, content, 1, v.length);
        return tlv(0x03, content);
    }

    static byte[] utf8(String s) {
        return tlv(0x0c, s.getBytes(StandardCharsets.UTF_8));
    }

    static byte[] oid(String dotted) {
        String[] arcs = dotted.split("\\.");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(Integer.parseInt(arcs[0]) * 40 + Integer.parseInt(arcs[1]));
        for (int i = 2; i < arcs.length; i++) {
            long arc = Long.parseLong(arcs[i]);
            int groups = Math.max(1, (64 - Long.numberOfLeadingZeros(arc) + 6) / 7);
            for (int g = groups - 1; g >= 0; g--) {
                out.write((int) ((arc >>> (7 * g)) & 0x7f) | (g > 0 ? 0x80 : 0));
            }
        }
        return tlv(0x06, out.toByteArray());
    }

    /** UTCTime through 2049, GeneralizedTime after, as RFC 5280 4.1.2.5 asks. */
    static byte[] time(ZonedDateTime t) {
        ZonedDateTime utc = t.withZoneSameInstant(ZoneOffset.UTC);
        return utc.getYear() < 2050
                ? tlv(
                        0x17,
                        DateTimeFormatter.ofPattern("yyMMddHHmmss'Z'")
                                .format(utc)
                                .getBytes(StandardCharsets.US_ASCII))
                : tlv(
                        0x18,
                        DateTimeFormatter.ofPattern("yyyyMMddHHmmss'Z'")
                                .format(utc)
                                .getBytes(StandardCharsets.US_ASCII));
    }

    /** A context-specific tag: {@code [n]} constructed (explicit) or primitive (implicit). */
    static byte[] tagged(int n, boolean constructed, byte[]... parts) {
        return tlv(0x80 | (constructed ? 0x20 : 0) | n, parts);
    }
}
