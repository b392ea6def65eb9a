package dev.airlock.wire;

import org.jspecify.annotations.Nullable;

/**
 * {@code GET /v1/health}: the API version, the daemon's pid, the data directory it serves and
 * the build of Airlock it runs.
 */
public record Health(
        String version, long pid, String data, @Nullable String build) {}
