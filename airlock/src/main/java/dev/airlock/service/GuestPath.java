package dev.airlock.service;

import dev.airlock.sandbox.SandboxException;
import java.nio.charset.StandardCharsets;

/**
 * A path inside a sandbox as a client names it: absolute, without {@code ..} segments or NUL
 * bytes, at most 4095 bytes. Every file operation of every front end goes through
 * {@link #check}, so a path that means "somewhere else" is refused in words before anything is
 * sent to the guest; {@code //} and {@code /./} are collapsed and a trailing {@code /} dropped.
 */
public final class GuestPath {
    private static final int MAX_BYTES = 4095;

    private GuestPath() {}

    /** The path in its plain form; refuses one that is not absolute or that climbs with {@code ..}. */
    public static String check(@org.jspecify.annotations.Nullable String path) {
        if (path == null || path.isEmpty()) {
            throw new SandboxException("a sandbox path is needed (an absolute path such as /tmp/file)");
        }
        if (path.indexOf('\0') >= 0) {
            throw new SandboxException("sandbox path '" + path.replace('\0', '?') + "' contains a NUL byte");
        }
        if (!path.startsWith("/")) {
            throw new SandboxException(
                    "sandbox path '" + path + "' must be absolute (start with /), e.g. /tmp/" + path);
        }
        StringBuilder plain = new StringBuilder();
        for (String segment : path.split("/")) {
            if (segment.isEmpty() || segment.equals(".")) {
                continue;
            }
            if (segment.equals("..")) {
                throw new SandboxException(
                        "sandbox path '" + path + "' climbs with '..': name the place inside the sandbox directly");
            }
            plain.append('/').append(segment);
        }
        String result = plain.isEmpty() ? "/" : plain.toString();
        if (result.getBytes(StandardCharsets.UTF_8).length > MAX_BYTES) {
            throw new SandboxException("sandbox path is longer than " + MAX_BYTES + " bytes");
        }
        return result;
    }
}
