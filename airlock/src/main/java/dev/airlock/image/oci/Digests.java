package dev.airlock.image.oci;

import dev.airlock.image.ImageException;
import java.util.regex.Pattern;

/** Content digests as OCI writes them, {@code sha256:<64 hex>}: the only algorithm accepted. */
public final class Digests {
    private static final Pattern SHA256 = Pattern.compile("sha256:[0-9a-f]{64}");

    private Digests() {}

    public static boolean isValid(String digest) {
        return SHA256.matcher(digest).matches();
    }

    /** The digest's hex part, after checking its form (it becomes a file name). */
    public static String hex(String digest) {
        if (!isValid(digest)) {
            throw new ImageException("unsupported or malformed digest '" + abbreviate(digest)
                    + "': only sha256:<64 hex digits> is accepted");
        }
        return digest.substring("sha256:".length());
    }

    public static String of(String hex) {
        return "sha256:" + hex;
    }

    /** {@code sha256:0123456789ab}, for messages. */
    public static String shortForm(String digest) {
        return digest.length() > 19 ? digest.substring(0, 19) : digest;
    }

    static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }
}
