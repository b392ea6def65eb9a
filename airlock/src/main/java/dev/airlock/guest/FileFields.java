package dev.airlock.guest;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import org.jspecify.annotations.Nullable;

/** The TLV tags of file requests and results, and the decoding of STAT and LIST results. */
final class FileFields {
    static final int PATH = 1;
    static final int MODE = 2;
    static final int MKDIRS = 3;
    static final int DEST = 4;
    static final int RECURSIVE = 5;
    static final int NAME = 10;
    static final int TYPE = 11;
    static final int SIZE = 12;
    static final int MTIME = 13;
    static final int UID = 14;
    static final int GID = 15;
    static final int TARGET = 16;

    private FileFields() {}

    static byte[] pathRequest(String path) {
        return new Tlv.Writer().string(PATH, requireAbsolute(path)).toPayload();
    }

    static String requireAbsolute(String path) {
        if (!path.startsWith("/")) {
            throw new IllegalArgumentException("guest paths must be absolute: " + path);
        }
        return path;
    }

    static FileStat stat(List<Tlv> fields) throws ProtocolException {
        Accumulator stat = new Accumulator();
        for (Tlv field : fields) {
            stat.accept(field);
        }
        return stat.build("STAT result");
    }

    static List<DirEntry> listing(List<Tlv> fields) throws ProtocolException {
        List<DirEntry> entries = new ArrayList<>();
        @Nullable String name = null;
        Accumulator current = new Accumulator();
        for (Tlv field : fields) {
            if (field.tag() == NAME) {
                if (name != null) {
                    entries.add(new DirEntry(name, current.build("LIST entry " + name)));
                }
                name = field.string();
                current = new Accumulator();
            } else if (name == null) {
                if (isKnown(field.tag())) {
                    throw new ProtocolException("LIST result has field " + field.tag() + " before the first NAME");
                }
            } else {
                current.accept(field);
            }
        }
        if (name != null) {
            entries.add(new DirEntry(name, current.build("LIST entry " + name)));
        }
        return List.copyOf(entries);
    }

    static long size(List<Tlv> fields, String what) throws ProtocolException {
        for (Tlv field : fields) {
            if (field.tag() == SIZE) {
                return field.u64();
            }
        }
        throw new ProtocolException(what + " has no SIZE");
    }

    private static boolean isKnown(int tag) {
        return tag == TYPE || tag == SIZE || tag == MODE || tag == MTIME || tag == UID || tag == GID || tag == TARGET;
    }

    /** Collects one file's fields; unknown tags are skipped as the spec requires. */
    private static final class Accumulator {
        private @Nullable FileType type;
        private long size = -1;
        private long mode = -1;
        private long mtimeNanos = -1;
        private OptionalLong uid = OptionalLong.empty();
        private OptionalLong gid = OptionalLong.empty();
        private @Nullable String target;

        void accept(Tlv field) throws ProtocolException {
            switch (field.tag()) {
                case TYPE -> type = FileType.fromCode(field.u8());
                case SIZE -> size = field.u64();
                case MODE -> mode = field.u32();
                case MTIME -> mtimeNanos = field.u64();
                case UID -> uid = OptionalLong.of(field.u32());
                case GID -> gid = OptionalLong.of(field.u32());
                case TARGET -> target = field.string();
                default -> {}
            }
        }

        FileStat build(String what) throws ProtocolException {
            if (type == null || size < 0 || mode < 0 || mtimeNanos < 0) {
                throw new ProtocolException(what + " lacks one of TYPE, SIZE, MODE, MTIME");
            }
            Instant modified = Instant.ofEpochSecond(0, mtimeNanos);
            return new FileStat(type, size, (int) mode, modified, uid, gid, target);
        }
    }
}
