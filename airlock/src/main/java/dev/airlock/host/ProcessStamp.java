package dev.airlock.host;

import java.time.Instant;
import java.util.Optional;

/**
 * Which process made a temporary thing (a staging directory, a temporary git ref): its pid and
 * start time, written into the thing's name, so a later run can tell a leftover of a process
 * that died (removed) from the work of one still running (kept), pid reuse included.
 */
public record ProcessStamp(long pid, long startMillis) {
    public static ProcessStamp current() {
        return of(ProcessHandle.current()).orElseThrow();
    }

    private static Optional<ProcessStamp> of(ProcessHandle p) {
        return p.info().startInstant().map(Instant::toEpochMilli).map(start -> new ProcessStamp(p.pid(), start));
    }

    /** The stamp as name text: {@code PID.STARTMILLIS}. */
    public String text() {
        return pid + "." + startMillis;
    }

    /** Reads a stamp from the start of {@code name} ({@code PID.STARTMILLIS...}); empty if there is none. */
    public static Optional<ProcessStamp> parse(String name) {
        String[] parts = name.split("\\.", 3);
        if (parts.length < 2) {
            return Optional.empty();
        }
        try {
            return Optional.of(new ProcessStamp(Long.parseLong(parts[0]), Long.parseLong(parts[1])));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** Whether the process that made the stamp still runs. */
    public boolean isAlive() {
        return ProcessHandle.of(pid)
                .filter(ProcessHandle::isAlive)
                .flatMap(ProcessStamp::of)
                .filter(this::equals)
                .isPresent();
    }
}
