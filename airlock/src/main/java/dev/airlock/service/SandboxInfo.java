package dev.airlock.service;

import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxState;
import java.time.Instant;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * A sandbox as every front end shows it: the API's answer, {@code inspect}'s output. Separate
 * from the engine's on-disk record, which holds what only the host needs (the VMM's pid, the
 * image file's path) and may change its layout without changing this contract.
 *
 * @param runtime the backend: {@code microvm}, {@code container}, ...
 * @param isolation what separates it from the host, in words
 * @param accel {@code kvm} or {@code tcg} for a microVM, {@code none} elsewhere
 * @param pid the host process that keeps it alive (its VMM, its container's init); 0 when not running
 * @param network {@code none}, {@code proxy} or {@code nat}
 * @param origin how it last came up ({@code cold}, {@code template KEY}, {@code resumed}, ...)
 * @param workspace the host repository its workspace came from, or null
 */
public record SandboxInfo(
        String id,
        String name,
        String runtime,
        String isolation,
        String image,
        String imageId,
        String accel,
        Resources resources,
        Map<String, String> env,
        @Nullable String workdir,
        SandboxState state,
        long pid,
        Instant created,
        @Nullable Instant started,
        @Nullable String error,
        String network,
        String origin,
        @Nullable String workspace) {

    public SandboxInfo {
        env = Map.copyOf(env);
    }

    public String shortId() {
        return id.substring(0, 12);
    }

    public boolean running() {
        return state == SandboxState.RUNNING;
    }
}
