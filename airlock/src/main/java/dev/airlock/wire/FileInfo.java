package dev.airlock.wire;

import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import java.time.Instant;
import java.util.Locale;
import java.util.OptionalLong;
import org.jspecify.annotations.Nullable;

/**
 * A file in a sandbox as the API shows it (stat, list, and the answer of an upload, mkdir or
 * move).
 *
 * @param type {@code file}, {@code directory}, {@code symlink} or {@code other}
 * @param mode the permission bits ({@code 0644} is 420)
 * @param uid the owner (absent in listings)
 * @param linkTarget a symlink's target (stat only)
 */
public record FileInfo(
        String name,
        String path,
        String type,
        long size,
        int mode,
        Instant modified,
        @Nullable Long uid,
        @Nullable Long gid,
        @Nullable String linkTarget) {

    public static FileInfo of(String path, FileStat st) {
        String name = path.equals("/") ? "/" : path.substring(path.lastIndexOf('/') + 1);
        return new FileInfo(
                name,
                path,
                st.type().name().toLowerCase(Locale.ROOT),
                st.size(),
                st.permissions(),
                st.modified(),
                st.uid().isPresent() ? st.uid().getAsLong() : null,
                st.gid().isPresent() ? st.gid().getAsLong() : null,
                st.linkTarget());
    }

    /** Back to the guest's form (for clients of the API that implement the service). */
    public FileStat toStat() {
        FileType t = switch (type) {
            case "file" -> FileType.FILE;
            case "directory" -> FileType.DIRECTORY;
            case "symlink" -> FileType.SYMLINK;
            default -> FileType.OTHER;
        };
        int typeBits = switch (t) {
            case FILE -> 0100000;
            case DIRECTORY -> 040000;
            case SYMLINK -> 0120000;
            case OTHER -> 0;
        };
        return new FileStat(
                t,
                size,
                typeBits | mode,
                modified,
                uid == null ? OptionalLong.empty() : OptionalLong.of(uid),
                gid == null ? OptionalLong.empty() : OptionalLong.of(gid),
                linkTarget);
    }
}
