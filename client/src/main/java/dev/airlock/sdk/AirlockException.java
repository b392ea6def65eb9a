package dev.airlock.sdk;

/**
 * An error the daemon answered, or a failure to reach it. {@link #kind()} says whose fault it
 * is, as the API's {@code ApiError} does: {@code INVALID} (400), {@code NOT_FOUND} (404),
 * {@code CONFLICT} (409), {@code TOO_LARGE} (413), {@code UNAUTHORIZED} (401),
 * {@code UNAVAILABLE} (503), {@code FAILED} (500); {@code UNREACHABLE} when no daemon answered.
 */
public class AirlockException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String kind;
    private final int status;

    public AirlockException(String kind, int status, String message) {
        super(message);
        this.kind = kind;
        this.status = status;
    }

    public AirlockException(String kind, int status, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.status = status;
    }

    /** The error's kind, e.g. {@code NOT_FOUND}. */
    public String kind() {
        return kind;
    }

    /** The HTTP status, or 0 when the daemon was not reached. */
    public int status() {
        return status;
    }
}
