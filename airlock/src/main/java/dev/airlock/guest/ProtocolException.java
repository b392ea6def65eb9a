package dev.airlock.guest;

import java.io.IOException;

/** The peer sent bytes that break the guest protocol; the session cannot continue after this. */
public final class ProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String message) {
        super(message);
    }
}
