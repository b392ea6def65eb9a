package dev.airlock.sandbox;

/** A user-facing sandbox error: the message says what was wrong and what to do. */
public class SandboxException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public SandboxException(String message) {
        super(message);
    }

    public SandboxException(String message, Throwable cause) {
        super(message, cause);
    }
}
