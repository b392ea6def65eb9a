package dev.airlock.sandbox;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

/** Sandbox ids and names: random ids, Docker-style two-word names, and the rule names follow. */
public final class Names {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Pattern VALID = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}");
    private static final List<String> ADJECTIVES = List.of(
            "brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nimble", "proud", "quiet", "swift", "tidy",
            "vivid", "witty", "bold", "clever");
    private static final List<String> NOUNS = List.of(
            "otter", "falcon", "lynx", "heron", "badger", "marten", "ibex", "puffin", "gecko", "bison", "crane",
            "dingo", "koala", "mole", "newt", "raven");

    private Names() {}

    public static String newId() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    public static String randomName() {
        return ADJECTIVES.get(RANDOM.nextInt(ADJECTIVES.size())) + "-" + NOUNS.get(RANDOM.nextInt(NOUNS.size())) + "-"
                + (100 + RANDOM.nextInt(900));
    }

    public static void validate(String name) {
        if (!VALID.matcher(name).matches()) {
            throw new SandboxException("invalid sandbox name '" + name
                    + "': use letters, digits, '_', '.' and '-', starting with a letter or digit (at most 63)");
        }
    }

    /**
     * Checks a reference to an existing sandbox (a name, an id or an id prefix) before it is
     * looked up or put into a URL: every valid one is a valid name, so anything else (a '?', a
     * '/', a space) is refused here rather than misread further on.
     */
    public static String validateRef(String ref) {
        if (!VALID.matcher(ref).matches()) {
            throw new SandboxException("'" + ref + "' is not a sandbox name or id: names use letters, digits,"
                    + " '_', '.' and '-'; list sandboxes with: airlock ps -a");
        }
        return ref;
    }
}
