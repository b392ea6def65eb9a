package dev.airlock.ociruntime;

import java.util.Locale;
import java.util.Map;

/** Signal names and numbers as runc's {@code kill} takes them: {@code SIGTERM}, {@code TERM} or {@code 15}. */
final class Signals {
    private static final Map<String, Integer> NUMBERS = Map.ofEntries(
            Map.entry("HUP", 1),
            Map.entry("INT", 2),
            Map.entry("QUIT", 3),
            Map.entry("KILL", 9),
            Map.entry("USR1", 10),
            Map.entry("USR2", 12),
            Map.entry("PIPE", 13),
            Map.entry("ALRM", 14),
            Map.entry("TERM", 15),
            Map.entry("CONT", 18),
            Map.entry("STOP", 19),
            Map.entry("WINCH", 28));

    private Signals() {}

    static int parse(String s) {
        try {
            int n = Integer.parseInt(s);
            if (n >= 1 && n <= 64) {
                return n;
            }
        } catch (NumberFormatException e) {
            String name = s.toUpperCase(Locale.ROOT);
            Integer n = NUMBERS.get(name.startsWith("SIG") ? name.substring(3) : name);
            if (n != null) {
                return n;
            }
        }
        throw new RuntimeError("unknown signal '" + s + "': give a name (SIGTERM, TERM) or a number from 1 to 64");
    }
}
