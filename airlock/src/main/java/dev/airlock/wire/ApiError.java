package dev.airlock.wire;

/**
 * Every error the API answers: the message (what was wrong, what to do) and the kind, one of
 * {@code INVALID} (400), {@code NOT_FOUND} (404), {@code CONFLICT} (409), {@code UNAVAILABLE}
 * (503), {@code FAILED} (500).
 */
public record ApiError(String error, String kind) {}
