package dev.airlock.service;

import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxState;
import java.time.Instant;
import java.util.List;
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
 * @param user the user of commands that name none (its image's {@code USER} or the request's);
 *     null for root
 * @param command what {@code run} starts when given no command (its image's entrypoint and cmd,
 *     or the request's); empty when none
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
        @Nullable String workspace,
        @Nullable String user,
        List<String> command) {

    public SandboxInfo {
        env = Map.copyOf(env);
        // answers of a daemon from before the user and command existed have neither
        command = command == null ? List.of() : List.copyOf(command);
    }

    /** Without a default user or command (the form before images' configs applied). */
    public SandboxInfo(
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
        this(
                id, name, runtime, isolation, image, imageId, accel, resources, env, workdir, state, pid, created,
                started, error, network, origin, workspace, null, List.of());
    }

    public String shortId() {
        return id.substring(0, 12);
    }

    public boolean running() {
        return state == SandboxState.RUNNING;
    }
}
