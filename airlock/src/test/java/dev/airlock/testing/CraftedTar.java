package dev.airlock.testing;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes tar archives byte by byte, the way a hostile sandbox could: any name, type, mode, owner,
 * link target or size, pax records of any length, truncated anywhere. A stand-in for a malicious
 * guest's tar; a real tar (or a library's writer) refuses or normalises most of these.
 */
public final class CraftedTar {
    public static final char FILE = '0';
    public static final char HARD_LINK = '1';
    public static final char SYMLINK = '2';
    public static final char CHAR_DEVICE = '3';
    public static final char BLOCK_DEVICE = '4';
    public static final char DIRECTORY = '5';
    public static final char FIFO = '6';

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private int uid;

    /** Owner written into the following headers. */
    public CraftedTar owner(int uid) {
        this.uid = uid;
        return this;
    }

    public CraftedTar dir(String name, int mode) {
        return entry(name, DIRECTORY, mode, "", new byte[0]);
    }

    public CraftedTar file(String name, int mode, String content) {
        return entry(name, FILE, mode, "", content.getBytes(StandardCharsets.UTF_8));
    }

    public CraftedTar symlink(String name, String target) {
        return entry(name, SYMLINK, 0777, target, new byte[0]);
    }

    public CraftedTar hardLink(String name, String target) {
        return entry(name, HARD_LINK, 0644, target, new byte[0]);
    }

    /** One entry with its data; names past 100 bytes go in a pax record first. */
    public CraftedTar entry(String name, char type, int mode, String linkName, byte[] data) {
        if (name.getBytes(StandardCharsets.UTF_8).length > 100) {
            pax(Map.of("path", name));
        }
        header(name, type, mode, data.length, linkName);
        out.writeBytes(data);
        pad(data.length);
        return this;
    }

    /** A header whose size field says {@code size} (octal, so below 8 GiB), with no data after it. */
    public CraftedTar headerOnly(String name, char type, int mode, long size) {
        header(name, type, mode, size, "");
        return this;
    }

    /** A pax extended header ('x') carrying these records for the next entry. */
    public CraftedTar pax(Map<String, String> records) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        for (var r : new LinkedHashMap<>(records).entrySet()) {
            String rest = " " + r.getKey() + "=" + r.getValue() + "\n";
            int len = rest.getBytes(StandardCharsets.UTF_8).length;
            int total = len + Integer.toString(len).length();
            if (Integer.toString(total).length() != Integer.toString(len).length()) {
                total++;
            }
            body.writeBytes((total + rest).getBytes(StandardCharsets.UTF_8));
        }
        byte[] data = body.toByteArray();
        header("PaxHeaders/x", 'x', 0644, data.length, "");
        out.writeBytes(data);
        pad(data.length);
        return this;
    }

    /** The two zero blocks that end an archive. */
    public CraftedTar end() {
        out.writeBytes(new byte[1024]);
        return this;
    }

    public byte[] bytes() {
        return out.toByteArray();
    }

    /** The first {@code n} bytes only: an archive cut off mid-stream. */
    public byte[] truncated(int n) {
        return Arrays.copyOf(out.toByteArray(), n);
    }

    private void header(String name, char type, int mode, long size, String linkName) {
        byte[] h = new byte[512];
        put(h, 0, 100, name);
        octal(h, 100, 8, mode);
        octal(h, 108, 8, uid);
        octal(h, 116, 8, uid);
        octal(h, 124, 12, size);
        octal(h, 136, 12, 1_700_000_000L);
        Arrays.fill(h, 148, 156, (byte) ' ');
        h[156] = (byte) type;
        put(h, 157, 100, linkName);
        put(h, 257, 6, "ustar");
        put(h, 263, 2, "00");
        put(h, 265, 32, uid == 0 ? "root" : "u" + uid);
        put(h, 297, 32, uid == 0 ? "root" : "u" + uid);
        octal(h, 329, 8, type == CHAR_DEVICE || type == BLOCK_DEVICE ? 1 : 0);
        octal(h, 337, 8, type == CHAR_DEVICE || type == BLOCK_DEVICE ? 3 : 0);
        long sum = 0;
        for (byte b : h) {
            sum += b & 0xff;
        }
        byte[] chk = String.format("%06o", sum).getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(chk, 0, h, 148, 6);
        h[154] = 0;
        h[155] = ' ';
        out.writeBytes(h);
    }

    private void pad(long length) {
        int rest = (int) (length % 512);
        if (rest != 0) {
            out.writeBytes(new byte[512 - rest]);
        }
    }

    private static void put(byte[] h, int at, int len, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(b, 0, h, at, Math.min(len, b.length));
    }

    private static void octal(byte[] h, int at, int len, long value) {
        String s = String.format("%0" + (len - 1) + "o", value);
        put(h, at, len - 1, s);
    }
}
