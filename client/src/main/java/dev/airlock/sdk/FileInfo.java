package dev.airlock.sdk;

import java.time.Instant;
import org.jspecify.annotations.Nullable;

/**
 * A file in a sandbox.
 *
 * @param type {@code file}, {@code directory}, {@code symlink} or {@code other}
 * @param mode its permission bits ({@code 0644})
 * @param uid its owner (not reported in listings)
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

    public boolean isDirectory() {
        return "directory".equals(type);
    }

    public boolean isFile() {
        return "file".equals(type);
    }
}
