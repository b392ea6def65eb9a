package dev.airlock.backend;

import org.jspecify.annotations.Nullable;

/** One clone of a fork: launched, or why not (each clone succeeds or fails on its own). */
public record CloneResult(@Nullable Launch launch, @Nullable String error) {
    public static CloneResult launched(Launch launch) {
        return new CloneResult(launch, null);
    }

    public static CloneResult failed(String error) {
        return new CloneResult(null, error);
    }
}
