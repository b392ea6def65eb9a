package dev.airlock.service;

import org.jspecify.annotations.Nullable;

/**
 * What {@code pull} brings back from a workspace sandbox.
 *
 * @param branch the host branch to create or fast-forward; null for {@code airlock/NAME}
 * @param includeUncommitted commit the sandbox's uncommitted changes first ({@code commit})
 * @param message that commit's message; null for a default naming the sandbox
 */
public record PullSpec(
        @Nullable String branch,
        boolean includeUncommitted,
        @Nullable String message) {}
