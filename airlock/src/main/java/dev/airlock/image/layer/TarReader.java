package dev.airlock.image.layer;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Reads a tar stream (POSIX ustar with pax extended headers, and the GNU long-name records and
 * base-256 numbers Docker's and GNU tar's archives use) entry by entry, with every length
 * bounded: an archive is untrusted input. Sparse members are refused rather than misread.
 *
 * <p>Written from POSIX.1-2017 pax(1) "ustar Interchange Format" and "pax Extended Header".
 */
public final class TarReader {
    /** A pax or GNU long-name record larger than this is refused (a path is at most 4 KiB). */
    static final int MAX_META_BYTES = 1 << 20;

    private static final int BLOCK = 512;

    private final InputStream in;
    private final byte[] header = new byte[BLOCK];
    private long remaining;
    private long padding;
    private Map<String, byte[]> global = Map.of();

    public TarReader(InputStream in) {
        this.in = in;
    }

    /** The next entry, or null at the end of the archive; its content is read with {@link #read}. */
    public @Nullable TarEntry next() throws IOException {
        skip(remaining + padding);
        remaining = 0;
        padding = 0;
        Map<String, byte[]> pax = new LinkedHashMap<>();
        String longName = null;
        String longLink = null;
        while (true) {
            if (!readBlock()) {
                return null;
            }
            if (isZero(header)) {
                // End of archive: two zero blocks, but a single one followed by EOF is tolerated.
                return null;
            }
            verifyChecksum();
            char type = (char) (header[156] & 0xff);
            long size = number(124, 12, "size");
            if (size < 0) {
                throw new TarFormatException("negative size in tar header");
            }
            switch (type) {
                case 'x' -> pax.putAll(parsePax(readMeta(size)));
                case 'g' -> {
                    Map<String, byte[]> g = new LinkedHashMap<>(global);
                    g.putAll(parsePax(readMeta(size)));
                    global = g;
                }
                case 'L' -> longName = cString(readMeta(size), 0, (int) size);
                case 'K' -> longLink = cString(readMeta(size), 0, (int) size);
                case 'V' -> skip(size + pad(size)); // a volume label names no file
                default -> {
                    return entry(type, size, pax, longName, longLink);
                }
            }
        }
    }

    /** Reads the current entry's content; -1 at its end. */
    public int read(byte[] buf, int off, int len) throws IOException {
        if (remaining <= 0) {
            return -1;
        }
        int n = in.read(buf, off, (int) Math.min(len, remaining));
        if (n < 0) {
            throw new EOFException("tar archive ends inside an entry's content");
        }
        remaining -= n;
        return n;
    }

    private TarEntry entry(
            char type, long headerSize, Map<String, byte[]> local, @Nullable String longName, @Nullable String longLink)
            throws IOException {
        Map<String, byte[]> pax = new LinkedHashMap<>(global);
        pax.putAll(local);
        for (String key : pax.keySet()) {
            if (key.startsWith("GNU.sparse.")) {
                throw new TarFormatException("sparse tar members are not supported");
            }
        }
        boolean ustar = header[257] == 'u'
                && header[258] == 's'
                && header[259] == 't'
                && header[260] == 'a'
                && header[261] == 'r'
                && header[262] == 0;
        String name = cString(header, 0, 100);
        if (ustar && header[345] != 0) {
            name = cString(header, 345, 155) + "/" + name;
        }
        if (longName != null) {
            name = longName;
        }
        name = paxText(pax, "path", name);
        String link = cString(header, 157, 100);
        if (longLink != null) {
            link = longLink;
        }
        link = paxText(pax, "linkpath", link);
        long size = paxNumber(pax, "size", headerSize);
        TarEntry.Type t = switch (type) {
            case '0', '\0', '7' -> TarEntry.Type.FILE;
            case '1' -> TarEntry.Type.HARDLINK;
            case '2' -> TarEntry.Type.SYMLINK;
            case '3' -> TarEntry.Type.CHAR_DEVICE;
            case '4' -> TarEntry.Type.BLOCK_DEVICE;
            case '5' -> TarEntry.Type.DIRECTORY;
            case '6' -> TarEntry.Type.FIFO;
            case 'S' -> throw new TarFormatException("sparse tar member '" + name + "' is not supported");
            default ->
                throw new TarFormatException("tar member '" + name + "' has an unknown type '" + printable(type) + "'");
        };
        if (t == TarEntry.Type.FILE && name.endsWith("/") && type == '\0') {
            t = TarEntry.Type.DIRECTORY; // pre-POSIX archives mark directories only by the slash
        }
        // Only regular files have content; a hard link's or directory's size field is ignored.
        long content = t == TarEntry.Type.FILE ? size : 0;
        long skipOther = t == TarEntry.Type.FILE ? 0 : size;
        remaining = content;
        padding = pad(content) + skipOther + pad(skipOther);
        Map<String, byte[]> xattrs = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> e : pax.entrySet()) {
            if (e.getKey().startsWith("SCHILY.xattr.")) {
                xattrs.put(e.getKey().substring("SCHILY.xattr.".length()), e.getValue());
            } else if (e.getKey().startsWith("LIBARCHIVE.xattr.")) {
                // libarchive: the name is URL-encoded, the value base64
                String attr = java.net.URLDecoder.decode(
                        e.getKey().substring("LIBARCHIVE.xattr.".length()), StandardCharsets.UTF_8);
                try {
                    xattrs.putIfAbsent(attr, Base64.getDecoder().decode(e.getValue()));
                } catch (IllegalArgumentException bad) {
                    throw new TarFormatException("tar member '" + name + "' has a malformed xattr " + attr);
                }
            }
        }
        long mtime = number(136, 12, "mtime");
        long mtimeNanos = 0;
        byte[] paxMtime = pax.get("mtime");
        if (paxMtime != null) {
            String v = new String(paxMtime, StandardCharsets.US_ASCII);
            int dot = v.indexOf('.');
            try {
                mtime = Long.parseLong(dot < 0 ? v : v.substring(0, dot));
                if (dot >= 0) {
                    String frac = (v.substring(dot + 1) + "000000000").substring(0, 9);
                    mtimeNanos = Long.parseLong(frac);
                }
            } catch (NumberFormatException bad) {
                throw new TarFormatException("tar member '" + name + "' has a malformed mtime '" + v + "'");
            }
        }
        return new TarEntry(
                name,
                t,
                (int) (number(100, 8, "mode") & 07777),
                paxNumber(pax, "uid", number(108, 8, "uid")),
                paxNumber(pax, "gid", number(116, 8, "gid")),
                content,
                mtime,
                mtimeNanos,
                link,
                t == TarEntry.Type.CHAR_DEVICE || t == TarEntry.Type.BLOCK_DEVICE ? number(329, 8, "devmajor") : 0,
                t == TarEntry.Type.CHAR_DEVICE || t == TarEntry.Type.BLOCK_DEVICE ? number(337, 8, "devminor") : 0,
                xattrs);
    }

    private static String printable(char c) {
        return c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c);
    }

    private byte[] readMeta(long size) throws IOException {
        if (size > MAX_META_BYTES) {
            throw new TarFormatException("a tar extended header of " + size + " bytes is larger than allowed");
        }
        byte[] b = in.readNBytes((int) size);
        if (b.length != size) {
            throw new EOFException("tar archive ends inside an extended header");
        }
        skip(pad(size));
        return b;
    }

    /** Records are "LEN KEY=VALUE\n" where LEN counts the whole record; values may be binary. */
    static Map<String, byte[]> parsePax(byte[] data) throws TarFormatException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        int pos = 0;
        while (pos < data.length) {
            if (data[pos] == 0) {
                break; // some writers pad the record block with NULs
            }
            int sp = pos;
            long len = 0;
            while (sp < data.length && data[sp] >= '0' && data[sp] <= '9' && sp - pos < 10) {
                len = len * 10 + (data[sp] - '0');
                sp++;
            }
            if (sp >= data.length || data[sp] != ' ' || len <= sp - pos + 1 || pos + len > data.length) {
                throw new TarFormatException("malformed pax extended header record");
            }
            int end = (int) (pos + len);
            if (data[end - 1] != '\n') {
                throw new TarFormatException("malformed pax extended header record (no newline)");
            }
            int eq = sp + 1;
            while (eq < end - 1 && data[eq] != '=') {
                eq++;
            }
            if (eq >= end - 1) {
                throw new TarFormatException("malformed pax extended header record (no '=')");
            }
            String key = new String(data, sp + 1, eq - sp - 1, StandardCharsets.UTF_8);
            byte[] value = java.util.Arrays.copyOfRange(data, eq + 1, end - 1);
            out.put(key, value);
            pos = end;
        }
        return out;
    }

    private static String paxText(Map<String, byte[]> pax, String key, String fallback) {
        byte[] v = pax.get(key);
        return v == null ? fallback : new String(v, StandardCharsets.UTF_8);
    }

    private static long paxNumber(Map<String, byte[]> pax, String key, long fallback) throws TarFormatException {
        byte[] v = pax.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            long n = Long.parseLong(new String(v, StandardCharsets.US_ASCII));
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new TarFormatException("malformed pax " + key + " value");
        }
    }

    /** An octal field, or GNU base-256 when the first byte's high bit is set. */
    private long number(int off, int len, String field) throws TarFormatException {
        if ((header[off] & 0x80) != 0) {
            if ((header[off] & 0x40) != 0) {
                throw new TarFormatException("negative base-256 " + field + " in tar header");
            }
            long v = header[off] & 0x3f;
            for (int i = 1; i < len; i++) {
                if ((v >>> 55) != 0) {
                    throw new TarFormatException("base-256 " + field + " in tar header is too large");
                }
                v = (v << 8) | (header[off + i] & 0xff);
            }
            return v;
        }
        long v = 0;
        int i = off;
        int end = off + len;
        while (i < end && (header[i] == ' ' || header[i] == 0)) {
            i++;
        }
        for (; i < end; i++) {
            byte b = header[i];
            if (b == ' ' || b == 0) {
                break;
            }
            if (b < '0' || b > '7') {
                throw new TarFormatException("malformed " + field + " field in tar header");
            }
            if ((v >>> 60) != 0) {
                throw new TarFormatException(field + " in tar header is too large");
            }
            v = (v << 3) | (b - '0');
        }
        return v;
    }

    private void verifyChecksum() throws TarFormatException {
        long stored = number(148, 8, "checksum");
        long unsigned = 0;
        long signed = 0;
        for (int i = 0; i < BLOCK; i++) {
            int b = i >= 148 && i < 156 ? ' ' : header[i];
            unsigned += b & 0xff;
            signed += (byte) b;
        }
        if (stored != unsigned && stored != signed) {
            throw new TarFormatException("tar header checksum mismatch: the archive is corrupt or not a tar");
        }
    }

    private boolean readBlock() throws IOException {
        int n = in.readNBytes(header, 0, BLOCK);
        if (n == 0) {
            return false; // a stream that ends without the zero blocks: tolerated, as GNU tar does
        }
        if (n < BLOCK) {
            throw new EOFException("tar archive ends inside a header");
        }
        return true;
    }

    private void skip(long n) throws IOException {
        long left = n;
        while (left > 0) {
            long s = in.skip(left);
            if (s <= 0) {
                if (in.read() < 0) {
                    throw new EOFException("tar archive ends inside an entry");
                }
                s = 1;
            }
            left -= s;
        }
    }

    private static long pad(long size) {
        return (BLOCK - (size % BLOCK)) % BLOCK;
    }

    private static boolean isZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static String cString(byte[] b, int off, int len) {
        int end = off;
        while (end < off + len && b[end] != 0) {
            end++;
        }
        return new String(b, off, end - off, StandardCharsets.UTF_8);
    }

    /** The archive is not a well-formed tar. */
    public static final class TarFormatException extends IOException {
        private static final long serialVersionUID = 1L;

        public TarFormatException(String message) {
            super(message);
        }
    }
}
