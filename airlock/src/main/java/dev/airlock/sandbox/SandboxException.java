package dev.airlock.sandbox;

/**
 * A user-facing sandbox error: the message says what was wrong and what to do. The kind maps to
 * the API's HTTP status and lets a remote client rebuild the same error.
 */
public class SandboxException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        /** Bad input: 400. */
        INVALID,
        /** No such sandbox: 404. */
        NOT_FOUND,
        /** The request clashes with the sandbox's state or another sandbox: 409. */
        CONFLICT,
        /** The host or VMM failed: 500. */
        FAILED
    }

    private final Kind kind;

    public SandboxException(String message) {
        this(Kind.INVALID, message);
    }

    public SandboxException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public SandboxException(String message, Throwable cause) {
        super(message, cause);
        this.kind = Kind.FAILED;
    }

    public Kind kind() {
        return kind;
    }
}
