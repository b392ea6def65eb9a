package dev.airlock.image.layer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Writes a POSIX (pax) tar archive, the form of an OCI layer: ustar headers, with a pax extended
 * header for what ustar cannot hold (long or non-ASCII names and link targets, large ids and
 * sizes, sub-second times, extended attributes as {@code SCHILY.xattr.NAME}, binary-safe).
 * {@link TarReader} reads back exactly what this writes.
 */
public final class TarWriter {
    private static final int BLOCK = 512;
    private static final long MAX_OCTAL_ID = 07777777L;
    private static final long MAX_OCTAL_SIZE = 077777777777L;

    private final OutputStream out;
    private final byte[] buffer = new byte[1 << 16];

    public TarWriter(OutputStream out) {
        this.out = out;
    }

    /**
     * Writes one entry; a regular file's {@code content} gives exactly {@code entry.size()} bytes
     * (fewer is an error: the archive would be corrupt). Directories get a trailing slash.
     */
    public void write(TarEntry entry, @Nullable InputStream content) throws IOException {
        String name = entry.type() == TarEntry.Type.DIRECTORY && !entry.name().endsWith("/")
                ? entry.name() + "/"
                : entry.name();
        Map<String, byte[]> pax = new LinkedHashMap<>();
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (nameBytes.length > 100 || !ascii(nameBytes)) {
            pax.put("path", nameBytes);
        }
        byte[] linkBytes = entry.linkName().getBytes(StandardCharsets.UTF_8);
        if (linkBytes.length > 100 || !ascii(linkBytes)) {
            pax.put("linkpath", linkBytes);
        }
        long size = entry.type() == TarEntry.Type.FILE ? entry.size() : 0;
        if (entry.uid() > MAX_OCTAL_ID || entry.uid() < 0) {
            pax.put("uid", ascii(Long.toString(entry.uid())));
        }
        if (entry.gid() > MAX_OCTAL_ID || entry.gid() < 0) {
            pax.put("gid", ascii(Long.toString(entry.gid())));
        }
        if (size > MAX_OCTAL_SIZE) {
            pax.put("size", ascii(Long.toString(size)));
        }
        if (entry.mtimeNanos() != 0 || entry.mtimeSeconds() < 0 || entry.mtimeSeconds() > MAX_OCTAL_SIZE) {
            pax.put("mtime", ascii(entry.mtimeSeconds() + "." + String.format("%09d", entry.mtimeNanos())));
        }
        for (Map.Entry<String, byte[]> x : entry.xattrs().entrySet()) {
            pax.put("SCHILY.xattr." + x.getKey(), x.getValue());
        }
        if (!pax.isEmpty()) {
            byte[] records = paxRecords(pax);
            byte[] h = header("PaxHeaders/" + shortName(nameBytes), 'x', 0644, 0, 0, records.length, 0, "", 0, 0);
            out.write(h);
            out.write(records);
            pad(records.length);
        }
        char type = switch (entry.type()) {
            case FILE -> '0';
            case HARDLINK -> '1';
            case SYMLINK -> '2';
            case CHAR_DEVICE -> '3';
            case BLOCK_DEVICE -> '4';
            case DIRECTORY -> '5';
            case FIFO -> '6';
        };
        out.write(header(
                truncated(nameBytes),
                type,
                entry.mode() & 07777,
                Math.max(0, Math.min(entry.uid(), MAX_OCTAL_ID)),
                Math.max(0, Math.min(entry.gid(), MAX_OCTAL_ID)),
                Math.min(size, MAX_OCTAL_SIZE),
                Math.max(0, Math.min(entry.mtimeSeconds(), MAX_OCTAL_SIZE)),
                truncated(linkBytes),
                entry.devMajor(),
                entry.devMinor()));
        if (size > 0) {
            if (content == null) {
                throw new IllegalArgumentException("file " + entry.name() + " has " + size + " bytes but no content");
            }
            long left = size;
            while (left > 0) {
                int n = content.read(buffer, 0, (int) Math.min(buffer.length, left));
                if (n < 0) {
                    throw new IOException(
                            "file " + entry.name() + " ended " + left + " bytes before its size of " + size);
                }
                out.write(buffer, 0, n);
                left -= n;
            }
            pad(size);
        }
    }

    /** The end of the archive: two zero blocks. */
    public void finish() throws IOException {
        out.write(new byte[2 * BLOCK]);
        out.flush();
    }

    private void pad(long size) throws IOException {
        int p = (int) ((BLOCK - size % BLOCK) % BLOCK);
        if (p > 0) {
            out.write(new byte[p]);
        }
    }

    private static byte[] header(
            String name,
            char type,
            int mode,
            long uid,
            long gid,
            long size,
            long mtime,
            String link,
            long devMajor,
            long devMinor) {
        byte[] h = new byte[BLOCK];
        put(h, 0, 100, name.getBytes(StandardCharsets.UTF_8));
        octal(h, 100, 8, mode);
        octal(h, 108, 8, uid);
        octal(h, 116, 8, gid);
        octal(h, 124, 12, size);
        octal(h, 136, 12, mtime);
        h[156] = (byte) type;
        put(h, 157, 100, link.getBytes(StandardCharsets.UTF_8));
        put(h, 257, 6, "ustar\0".getBytes(StandardCharsets.US_ASCII));
        put(h, 263, 2, "00".getBytes(StandardCharsets.US_ASCII));
        if (type == '3' || type == '4') {
            octal(h, 329, 8, devMajor);
            octal(h, 337, 8, devMinor);
        }
        Arrays.fill(h, 148, 156, (byte) ' ');
        long sum = 0;
        for (byte b : h) {
            sum += b & 0xff;
        }
        byte[] ck = String.format("%06o", sum).getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(ck, 0, h, 148, 6);
        h[154] = 0;
        h[155] = ' ';
        return h;
    }

    private static void octal(byte[] h, int off, int width, long value) {
        byte[] digits = String.format("%0" + (width - 1) + "o", value).getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(digits, 0, h, off, width - 1);
        h[off + width - 1] = 0;
    }

    private static void put(byte[] h, int off, int len, byte[] value) {
        System.arraycopy(value, 0, h, off, Math.min(len, value.length));
    }

    /** "LEN KEY=VALUE\n", LEN counting the whole record, its own digits included. */
    static byte[] paxRecords(Map<String, byte[]> pax) {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        for (Map.Entry<String, byte[]> e : pax.entrySet()) {
            byte[] key = e.getKey().getBytes(StandardCharsets.UTF_8);
            int base = 1 + key.length + 1 + e.getValue().length + 1;
            int len = base + 1;
            while (len != base + Integer.toString(len).length()) {
                len = base + Integer.toString(len).length();
            }
            b.writeBytes(ascii(len + " "));
            b.writeBytes(key);
            b.write('=');
            b.writeBytes(e.getValue());
            b.write('\n');
        }
        return b.toByteArray();
    }

    private static String truncated(byte[] bytes) {
        // ustar's field: the pax record holds the whole name; keep the header's copy ASCII
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < bytes.length && s.length() < 99; i++) {
            int c = bytes[i] & 0xff;
            s.append(c >= 0x20 && c < 0x7f ? (char) c : '_');
        }
        return s.toString();
    }

    private static String shortName(byte[] name) {
        String t = truncated(name);
        return t.length() > 80 ? t.substring(t.length() - 80) : t;
    }

    private static boolean ascii(byte[] b) {
        for (byte x : b) {
            if (x < 0x20 || x >= 0x7f) {
                return false;
            }
        }
        return true;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
