package dev.airlock.service;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * A change to a sandbox's egress policy, applied by the service in one step (read, edit, write)
 * so two clients changing it at once cannot lose each other's change. Null lists change nothing.
 *
 * @param allow hosts to add to the allowlist
 * @param deny hosts to remove from it (each must be on it)
 * @param pin {@code NAME:IP} pins to add
 * @param unpin names whose pins go
 */
public record PolicyChange(
        @Nullable List<String> allow,
        @Nullable List<String> deny,
        @Nullable List<String> pin,
        @Nullable List<String> unpin) {}
