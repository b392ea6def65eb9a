package dev.airlock.sandbox;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * A sandbox's lifecycle. Only the transitions listed here happen; anything else is a bug or a
 * user asking for something impossible (starting a running sandbox), reported as such.
 *
 * <pre>
 *   CREATED --start--> RUNNING --stop/exit--> STOPPED --start--> RUNNING
 *                         |  ^
 *                         |  +--resume-- PAUSED (memory and devices saved to disk, no VMM) --stop--> STOPPED
 *                         +--pause-------^
 *                         +--VMM died--> FAILED --start--> RUNNING
 * </pre>
 */
public enum SandboxState {
    CREATED,
    RUNNING,
    STOPPED,
    FAILED,
    PAUSED;

    public Set<SandboxState> next() {
        return switch (this) {
            case CREATED, STOPPED, FAILED -> EnumSet.of(RUNNING, FAILED);
            case RUNNING -> EnumSet.of(STOPPED, FAILED, PAUSED);
            case PAUSED -> EnumSet.of(RUNNING, STOPPED, FAILED);
        };
    }

    public boolean canBecome(SandboxState target) {
        return next().contains(target);
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
