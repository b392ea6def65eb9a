package dev.airlock.build;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;

/**
 * What a sandbox's filesystem held at one moment, as the agent's {@code walk} built-in reports it:
 * per path (relative to /, other mounts left out) its type, mode, owner, size, times, inode and
 * link count. Two snapshots taken around a build step give the step's changes: every path whose
 * metadata differs (the change time moves with any change to a file, its content included), and
 * every path gone. The records come from the guest and are read with bounds.
 */
final class TreeSnapshot {
    /** The most entries a snapshot may hold: more than any real root filesystem. */
    static final int MAX_ENTRIES = 4_000_000;

    private static final int MAX_PATH = 4095;

    /** One file's metadata; {@code type} is f, d, l, c, b or p. */
    record Meta(char type, int mode, long uid, long gid, long size, long mtime, long ctime, long ino, long nlink) {
        boolean isDirectory() {
            return type == 'd';
        }
    }

    /** The changes from one snapshot to a later one: paths to delete (topmost only) and paths to pack. */
    record Diff(List<String> deleted, List<String> changed) {
        boolean isEmpty() {
            return deleted.isEmpty() && changed.isEmpty();
        }
    }

    private final NavigableMap<String, Meta> entries;

    private TreeSnapshot(NavigableMap<String, Meta> entries) {
        this.entries = entries;
    }

    static final TreeSnapshot EMPTY = new TreeSnapshot(Collections.unmodifiableNavigableMap(new TreeMap<>()));

    int size() {
        return entries.size();
    }

    Meta get(String path) {
        Meta m = entries.get(path);
        if (m == null) {
            throw new IllegalArgumentException("no " + path + " in the snapshot");
        }
        return m;
    }

    boolean contains(String path) {
        return entries.containsKey(path);
    }

    boolean isDirectory(String path) {
        Meta m = entries.get(path);
        return m != null && m.isDirectory();
    }

    /** The path and everything below it, in order (parents first). */
    List<String> subtree(String path) {
        List<String> out = new ArrayList<>();
        if (entries.containsKey(path)) {
            out.add(path);
        }
        String prefix = path.isEmpty() ? "" : path + "/";
        for (String p : entries.tailMap(prefix, true).keySet()) {
            if (!p.startsWith(prefix)) {
                break;
            }
            if (!p.equals(path)) {
                out.add(p);
            }
        }
        return out;
    }

    /** Every path, in order. */
    Iterable<String> paths() {
        return entries.keySet();
    }

    /**
     * Reads the walk's records: {@code u16 length, path, u8 type, u32 st_mode, u32 uid, u32 gid,
     * u64 size, u64 mtime ns, u64 ctime ns, u64 inode, u32 links}, big-endian.
     */
    static TreeSnapshot read(InputStream in) throws IOException {
        DataInputStream data = new DataInputStream(in);
        TreeMap<String, Meta> map = new TreeMap<>();
        var utf8 = StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        byte[] name = new byte[MAX_PATH];
        while (true) {
            int len;
            try {
                len = data.readUnsignedShort();
            } catch (EOFException end) {
                break;
            }
            if (len == 0 || len > MAX_PATH) {
                throw new BuildException("the sandbox's file listing is malformed (a path of " + len + " bytes)");
            }
            data.readFully(name, 0, len);
            String path;
            try {
                path = utf8.decode(ByteBuffer.wrap(name, 0, len)).toString();
            } catch (CharacterCodingException e) {
                throw new BuildException("a file name in the sandbox is not valid UTF-8 ("
                        + new String(name, 0, len, StandardCharsets.UTF_8)
                        + "); image layers here need UTF-8 names: rename it in the RUN step");
            }
            if (path.startsWith("/")
                    || path.contains("//")
                    || path.equals("..")
                    || path.startsWith("../")
                    || path.contains("/../")
                    || path.endsWith("/..")) {
                throw new BuildException("the sandbox's file listing is malformed (path '" + path + "')");
            }
            char type = (char) data.readUnsignedByte();
            if ("fdlcbp".indexOf(type) < 0) {
                throw new BuildException("the sandbox's file listing is malformed (type '" + type + "')");
            }
            Meta m = new Meta(
                    type,
                    data.readInt(),
                    Integer.toUnsignedLong(data.readInt()),
                    Integer.toUnsignedLong(data.readInt()),
                    data.readLong(),
                    data.readLong(),
                    data.readLong(),
                    data.readLong(),
                    Integer.toUnsignedLong(data.readInt()));
            if (map.put(path, m) != null) {
                throw new BuildException("the sandbox's file listing is malformed (" + path + " twice)");
            }
            if (map.size() > MAX_ENTRIES) {
                throw new BuildException("the sandbox holds more than " + MAX_ENTRIES + " files; too many to snapshot");
            }
        }
        return new TreeSnapshot(map);
    }

    private static boolean underAny(String p, java.util.Set<String> dirs) {
        for (int slash = p.lastIndexOf('/'); slash > 0; slash = p.lastIndexOf('/', slash - 1)) {
            if (dirs.contains(p.substring(0, slash))) {
                return true;
            }
        }
        return false;
    }

    /** What changed from this snapshot to {@code after}. */
    Diff diff(TreeSnapshot after) {
        List<String> deleted = new ArrayList<>();
        java.util.Set<String> gone = new java.util.HashSet<>();
        for (String p : entries.keySet()) {
            if (after.entries.containsKey(p)) {
                continue;
            }
            gone.add(p);
            if (!underAny(p, gone)) {
                deleted.add(p); // below a deleted directory, that directory's whiteout covers it
            }
        }
        List<String> changed = new ArrayList<>();
        for (Map.Entry<String, Meta> e : after.entries.entrySet()) {
            Meta before = entries.get(e.getKey());
            if (before == null || !before.equals(e.getValue())) {
                changed.add(e.getKey());
            }
        }
        return new Diff(deleted, changed);
    }
}
