package dev.airlock.guest;

import java.time.Instant;
import java.util.OptionalLong;
import org.jspecify.annotations.Nullable;

/**
 * Metadata of a guest file.
 *
 * @param mode the raw {@code st_mode}, file type bits included; see {@link #permissions()}
 * @param uid the owner, absent in listings (LIST does not report it)
 * @param gid the group, absent in listings
 * @param linkTarget a symlink's target when STAT reported it, else null
 */
public record FileStat(
        FileType type,
        long size,
        int mode,
        Instant modified,
        OptionalLong uid,
        OptionalLong gid,
        @Nullable String linkTarget) {

    /** The permission bits, {@code 07777} of the mode. */
    public int permissions() {
        return mode & 07777;
    }
}
