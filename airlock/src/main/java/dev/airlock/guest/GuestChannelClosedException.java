package dev.airlock.guest;

import java.io.IOException;

/**
 * The session ended, so the operation cannot complete. The cause says why: a {@link
 * ProtocolException} for a misbehaving agent, a {@link GuestException} for a session-level ERROR,
 * an {@link java.io.EOFException} when the agent went away, or none when the host closed it.
 */
public final class GuestChannelClosedException extends IOException {
    private static final long serialVersionUID = 1L;

    public GuestChannelClosedException(String message) {
        super(message);
    }

    public GuestChannelClosedException(String message, Throwable cause) {
        super(message, cause);
    }

    /** A fresh copy for one caller, so its stack trace shows where that caller was waiting. */
    GuestChannelClosedException copy() {
        String message = String.valueOf(getMessage());
        Throwable cause = getCause();
        return cause == null
                ? new GuestChannelClosedException(message)
                : new GuestChannelClosedException(message, cause);
    }
}
