package dev.airlock.e2b;

import dev.airlock.sandbox.SandboxException;

/**
 * An error to answer in E2B's terms: an HTTP status for the REST routes (the control plane and
 * {@code /files}) and the matching Connect code for the RPCs. Built from the service's
 * {@link SandboxException} kinds so an E2B client sees the same cause in its own words.
 */
final class E2bException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int status;

    E2bException(int status, String message) {
        super(message);
        this.status = status;
    }

    E2bException(int status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    int status() {
        return status;
    }

    static E2bException badRequest(String message) {
        return new E2bException(400, message);
    }

    static E2bException notFound(String message) {
        return new E2bException(404, message);
    }

    /** The service's error, with the status of its kind. */
    static E2bException of(SandboxException e) {
        return new E2bException(e.kind().httpStatus(), String.valueOf(e.getMessage()), e);
    }

    /** The Connect code of an HTTP status, as Connect's own mapping pairs them. */
    String connectCode() {
        return switch (status) {
            case 400 -> "invalid_argument";
            case 401 -> "unauthenticated";
            case 403 -> "permission_denied";
            case 404 -> "not_found";
            case 409 -> "already_exists";
            case 412 -> "failed_precondition";
            case 413, 429, 507 -> "resource_exhausted";
            case 501 -> "unimplemented";
            case 502, 503 -> "unavailable";
            case 504 -> "deadline_exceeded";
            default -> "internal";
        };
    }

    /** The HTTP status Connect gives a code in a unary answer. */
    static int statusOfCode(String code) {
        return switch (code) {
            case "invalid_argument", "failed_precondition", "out_of_range" -> 400;
            case "unauthenticated" -> 401;
            case "permission_denied" -> 403;
            case "not_found" -> 404;
            case "already_exists", "aborted" -> 409;
            case "resource_exhausted" -> 429;
            case "canceled" -> 499;
            case "unimplemented" -> 501;
            case "unavailable" -> 503;
            case "deadline_exceeded" -> 504;
            default -> 500;
        };
    }
}
