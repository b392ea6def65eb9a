package dev.airlock.sandbox;

import java.time.Instant;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The persisted description of one sandbox: what it was created with and where its lifecycle
 * stands. Immutable; the store writes a new version atomically on every change.
 *
 * @param nat whether it has a NIC with user-mode NAT ({@code --network nat}): the device set of
 *     its VM (so part of its template key) and the network namespace of its container depend on it
 */
public record Sandbox(
        String id,
        String name,
        String runtime,
        String image,
        String imageId,
        String imageFile,
        String accel,
        Resources resources,
        Map<String, String> env,
        @Nullable String workdir,
        Instant created,
        SandboxState state,
        long vmmPid,
        @Nullable Instant started,
        @Nullable String error,
        boolean nat) {

    public Sandbox {
        env = Map.copyOf(env);
    }

    public String shortId() {
        return id.substring(0, 12);
    }

    /** The same sandbox under another id (a warm-pool VM's, which a create claims). */
    Sandbox withId(String newId) {
        return new Sandbox(
                newId, name, runtime, image, imageId, imageFile, accel, resources, env, workdir, created, state, vmmPid,
                started, error, nat);
    }

    Sandbox moveTo(SandboxState target, long pid, @Nullable String why) {
        if (!state.canBecome(target) && state != target) {
            throw new SandboxException(
                    "sandbox " + name + " is " + state.label() + " and cannot become " + target.label());
        }
        Instant startedAt = target == SandboxState.RUNNING ? Instant.now() : started;
        return new Sandbox(
                id, name, runtime, image, imageId, imageFile, accel, resources, env, workdir, created, target, pid,
                startedAt, why, nat);
    }
}
