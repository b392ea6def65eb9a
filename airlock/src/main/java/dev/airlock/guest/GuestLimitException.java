package dev.airlock.guest;

import java.io.IOException;
import java.time.Duration;

/**
 * A call to the agent went past a bound the host set: it did not finish in time, or the agent
 * sent more than the caller takes. The guest is hostile, so every call the host makes on its own
 * (not on a user's behalf) carries both; the stream is cancelled when this is thrown.
 */
public final class GuestLimitException extends IOException {
    private static final long serialVersionUID = 1L;

    /** Which bound was hit. */
    public enum Limit {
        TIME,
        SIZE
    }

    private final Limit limit;

    private GuestLimitException(Limit limit, String message) {
        super(message);
        this.limit = limit;
    }

    /** The same bound, with the caller's account of what could not be done. */
    public GuestLimitException(GuestLimitException cause, String message) {
        super(message, cause);
        this.limit = cause.limit;
    }

    /** E.g. "the agent did not finish reading /etc/x within PT30S". */
    static GuestLimitException time(String what, Duration timeout) {
        return new GuestLimitException(
                Limit.TIME,
                "the agent did not finish " + what + " within " + seconds(timeout) + " (a deadline of the host)");
    }

    static GuestLimitException size(String what, long maxBytes) {
        return new GuestLimitException(
                Limit.SIZE,
                "the agent sent more than " + maxBytes + " bytes for " + what + " (a size cap of the host)");
    }

    public Limit limit() {
        return limit;
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }
}
