package dev.airlock.e2b;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Who an envd request acts as, in E2B's terms, and where that user is at home. E2B sandboxes
 * have {@code root} and an unprivileged {@code user} (home {@code /home/user}, the default);
 * Airlock images have {@code root} and {@code airlock} (uid 1000). E2B's {@code user} runs as
 * uid 1000 with {@code HOME=/home/user} and {@code USER=user}, and {@code /home/user} is made
 * (owned by uid 1000) when the sandbox is created. Any other name is passed to the guest as is,
 * with its home at {@code /home/NAME}.
 *
 * @param name the E2B user name
 * @param guestUser what the guest agent runs commands as: null for root
 * @param home the user's home, where relative paths start
 */
record E2bUser(String name, @Nullable String guestUser, String home) {
    static final E2bUser ROOT = new E2bUser("root", null, "/root");
    static final E2bUser USER = new E2bUser("user", "1000:1000", "/home/user");
    static final int USER_UID = 1000;
    private static final Pattern NAME = Pattern.compile("[a-z_][a-z0-9_-]{0,31}");

    static E2bUser named(@Nullable String name) {
        if (name == null || name.isEmpty() || name.equals("user")) {
            return USER;
        }
        if (name.equals("root")) {
            return ROOT;
        }
        if (!NAME.matcher(name).matches()) {
            throw E2bException.badRequest("invalid user name '" + name + "': use root, user or a guest user name");
        }
        return new E2bUser(name, name, "/home/" + name);
    }

    /** The user of an RPC: {@code Authorization: Basic base64(NAME:)}, or the default. */
    static E2bUser ofAuthorization(@Nullable String header) {
        if (header == null || !header.regionMatches(true, 0, "Basic ", 0, 6)) {
            return USER;
        }
        String decoded;
        try {
            decoded = new String(Base64.getDecoder().decode(header.substring(6).strip()), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new E2bException(401, "the Authorization header is not valid Basic credentials");
        }
        int colon = decoded.indexOf(':');
        return named(colon >= 0 ? decoded.substring(0, colon) : decoded);
    }

    /** The variables E2B's envd gives its user's processes. */
    Map<String, String> env() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("HOME", home);
        env.put("USER", name);
        env.put("LOGNAME", name);
        return env;
    }

    /**
     * A guest path from an E2B path: relative ones start at the home, {@code ~} is the home, and
     * {@code .} and {@code ..} are resolved here (never above {@code /}), so what reaches the
     * guest is a plain absolute path.
     */
    String resolve(@Nullable String path) {
        if (path == null || path.isEmpty()) {
            return home;
        }
        if (path.indexOf('\0') >= 0) {
            throw E2bException.badRequest("the path contains a NUL character");
        }
        String full;
        if (path.equals("~")) {
            full = home;
        } else if (path.startsWith("~/")) {
            full = home + path.substring(1);
        } else if (path.startsWith("/")) {
            full = path;
        } else {
            full = home + "/" + path;
        }
        Deque<String> parts = new ArrayDeque<>();
        for (String part : full.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                parts.pollLast();
            } else {
                parts.addLast(part);
            }
        }
        return "/" + String.join("/", parts);
    }
}
