package dev.airlock.backend;

/**
 * A sandbox a backend has just brought up.
 *
 * @param pid the host process that keeps it alive (the VMM, the container's init)
 * @param origin how it came up, for {@code inspect} and tests: {@code cold}, {@code template KEY},
 *     {@code pool, template KEY}, {@code resumed}, {@code fork of NAME}, {@code container}
 * @param agentAnswered whether its agent has already answered (a restore talks to it); when
 *     false the engine waits for the agent before calling the start done
 */
public record Launch(long pid, String origin, boolean agentAnswered) {}
