package dev.airlock.image;

import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * A built image in the store. {@code id} is the SHA-256 of the erofs file, so two builds that
 * produce the same bytes are the same image; {@code recipe} is the hash of the spec it was built
 * from, which is how a spec finds its image without rebuilding. A pulled or imported image also has
 * its OCI {@code config} (what a sandbox made from it runs with by default) and its {@code source}
 * (registry reference or archive, digests, layers); a built image has an empty config and no
 * source.
 */
public record Image(
        String name,
        String id,
        String recipe,
        Path file,
        long sizeBytes,
        Instant created,
        long buildMillis,
        List<String> packages,
        List<String> commands,
        ImageConfig config,
        @Nullable ImageSource source) {

    public String shortId() {
        return id.substring(0, 12);
    }
}
