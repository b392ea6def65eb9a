package dev.airlock.service;

import dev.airlock.sandbox.SandboxState;
import java.time.Instant;
import org.jspecify.annotations.Nullable;

/**
 * A change in a sandbox's life, as {@link SandboxService#events} reports it.
 *
 * @param seq increases by one per event of the daemon (a gap means events were missed)
 * @param type {@code created}, {@code state} (it changed state) or {@code removed}
 * @param sandbox its id
 * @param state its state after the change (its last one for {@code removed})
 * @param previous its state before, null for {@code created}
 */
public record SandboxEvent(
        long seq,
        String type,
        String sandbox,
        String name,
        SandboxState state,
        @Nullable SandboxState previous,
        Instant time) {}
