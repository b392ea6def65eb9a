package dev.airlock.local;

import java.time.Instant;

/** The daemon's log: one timestamped line per event, on stderr (which the daemon's log file is). */
public final class DaemonLog {
    private DaemonLog() {}

    public static void log(String message) {
        System.err.println(Instant.now() + " airlockd: " + message);
    }
}
