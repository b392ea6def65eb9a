package dev.airlock.ociruntime;

import dev.airlock.host.SignalNumbers;

/** Signal names and numbers as runc's {@code kill} takes them: {@code SIGTERM}, {@code TERM} or {@code 15}. */
final class Signals {
    private Signals() {}

    static int parse(String s) {
        return SignalNumbers.parse(s)
                .orElseThrow(() -> new RuntimeError(
                        "unknown signal '" + s + "': give a name (SIGTERM, TERM) or a number from 1 to 64"));
    }
}
