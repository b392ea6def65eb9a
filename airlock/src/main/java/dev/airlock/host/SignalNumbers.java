package dev.airlock.host;

import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;

/**
 * Linux signals by name or number, as the API's exec messages and the OCI runtime's {@code kill}
 * take them: {@code TERM}, {@code SIGTERM}, {@code sigterm} or {@code 15}. Each caller says in its
 * own words what it accepts when a signal names none.
 */
public final class SignalNumbers {
    /** x86-64 and arm64 Linux numbers; the ones a person names, the rest go by number. */
    private static final Map<String, Integer> BY_NAME = Map.ofEntries(
            Map.entry("HUP", 1),
            Map.entry("INT", 2),
            Map.entry("QUIT", 3),
            Map.entry("ABRT", 6),
            Map.entry("KILL", 9),
            Map.entry("USR1", 10),
            Map.entry("USR2", 12),
            Map.entry("PIPE", 13),
            Map.entry("ALRM", 14),
            Map.entry("TERM", 15),
            Map.entry("CONT", 18),
            Map.entry("STOP", 19),
            Map.entry("TSTP", 20),
            Map.entry("WINCH", 28));

    private SignalNumbers() {}

    /** The number {@code signal} names (a name above, with or without SIG, or 1-64); empty when it names none. */
    public static OptionalInt parse(String signal) {
        String name = signal.strip().toUpperCase(Locale.ROOT);
        if (name.startsWith("SIG")) {
            name = name.substring(3);
        }
        Integer known = BY_NAME.get(name);
        if (known != null) {
            return OptionalInt.of(known);
        }
        try {
            int number = Integer.parseInt(name);
            if (number >= 1 && number <= 64) {
                return OptionalInt.of(number);
            }
        } catch (NumberFormatException e) {
            // neither a name nor a number: none
        }
        return OptionalInt.empty();
    }
}
