package dev.airlock.sdk;

import java.time.Instant;
import org.jspecify.annotations.Nullable;

/**
 * A change in a sandbox's life.
 *
 * @param type {@code created}, {@code state} or {@code removed}
 * @param sandbox the sandbox's id
 * @param state its state after the change
 * @param previous its state before (null for {@code created})
 */
public record SandboxEvent(
        long seq,
        String type,
        String sandbox,
        String name,
        String state,
        @Nullable String previous,
        Instant time) {}
