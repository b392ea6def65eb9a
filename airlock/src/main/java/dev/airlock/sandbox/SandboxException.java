package dev.airlock.sandbox;

/**
 * A user-facing error: the message says what was wrong and what to do. Its {@link Kind} is the
 * one place an error's class of cause maps to an HTTP status and a CLI exit code, and lets a
 * remote client rebuild the same error from the API's answer.
 */
public class SandboxException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Docker's exit code for errors of its own (not the command's). */
    private static final int OWN_ERROR = 125;

    public enum Kind {
        /** The request is malformed or impossible (a bad name, an unknown runtime, a bad size). */
        INVALID(400, OWN_ERROR),
        /** The sandbox (or another named thing) does not exist. */
        NOT_FOUND(404, OWN_ERROR),
        /** The request clashes with the sandbox's state or with another sandbox. */
        CONFLICT(409, OWN_ERROR),
        /** What the request needs cannot run on this host (a runtime whose tools are missing). */
        UNAVAILABLE(503, OWN_ERROR),
        /** The data is larger than what takes it (an upload beyond the sandbox's disk, a full disk). */
        TOO_LARGE(413, OWN_ERROR),
        /** The host, the VMM or the guest failed while doing what was asked. */
        FAILED(500, OWN_ERROR);

        private final int httpStatus;
        private final int exitCode;

        Kind(int httpStatus, int exitCode) {
            this.httpStatus = httpStatus;
            this.exitCode = exitCode;
        }

        public int httpStatus() {
            return httpStatus;
        }

        public int exitCode() {
            return exitCode;
        }

        /** The kind of an HTTP error status, for clients that only have the status. */
        public static Kind ofStatus(int status) {
            for (Kind k : values()) {
                if (k.httpStatus == status) {
                    return k;
                }
            }
            return status >= 400 && status < 500 ? INVALID : FAILED;
        }
    }

    private final Kind kind;

    /** A user mistake ({@link Kind#INVALID}); every other cause names its kind. */
    public SandboxException(String message) {
        this(Kind.INVALID, message);
    }

    public SandboxException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    /** A failure of the host, VMM or guest ({@link Kind#FAILED}) with its cause. */
    public SandboxException(String message, Throwable cause) {
        this(Kind.FAILED, message, cause);
    }

    public SandboxException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public static SandboxException notFound(String message) {
        return new SandboxException(Kind.NOT_FOUND, message);
    }

    public static SandboxException conflict(String message) {
        return new SandboxException(Kind.CONFLICT, message);
    }

    public static SandboxException failed(String message) {
        return new SandboxException(Kind.FAILED, message);
    }

    public static SandboxException unavailable(String message) {
        return new SandboxException(Kind.UNAVAILABLE, message);
    }

    public Kind kind() {
        return kind;
    }
}
