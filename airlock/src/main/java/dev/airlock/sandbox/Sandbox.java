package dev.airlock.sandbox;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The persisted description of one sandbox: what it was created with and where its lifecycle
 * stands. Immutable; the store writes a new version atomically on every change.
 *
 * @param nat whether it has a NIC with user-mode NAT ({@code --network nat}): the device set of
 *     its VM (so part of its template key) and the network namespace of its container depend on it
 * @param user the user of commands that name none (its image's {@code USER} or the request's), or
 *     null for root
 * @param command what {@code run} starts when given no command: its image's entrypoint and cmd,
 *     or the request's; empty when there is none
 * @param namespaces namespaces its container joins by path instead of making its own
 *     (runtime-spec type -> path); empty for none
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
        boolean nat,
        @Nullable String user,
        List<String> command,
        Map<String, String> namespaces) {

    public Sandbox {
        env = Map.copyOf(env);
        // records written before the user and command existed have neither
        command = command == null ? List.of() : List.copyOf(command);
        // nor before joined namespaces
        namespaces = namespaces == null ? Map.of() : Map.copyOf(namespaces);
    }

    public String shortId() {
        return id.substring(0, 12);
    }

    /** The same sandbox under another id (a warm-pool VM's, which a create claims). */
    public Sandbox withId(String newId) {
        return copy(newId, name, created, state, vmmPid, started, error);
    }

    /**
     * A new, never started sandbox with this one's configuration under another id and name (a
     * fork's clone, a warm-pool VM, the neutral sandbox a template is booted for).
     */
    public Sandbox copyAs(String newId, String newName) {
        return copy(newId, newName, Instant.now(), SandboxState.CREATED, 0, null, null);
    }

    /** This sandbox in another state; refused when the lifecycle has no such transition. */
    public Sandbox moveTo(SandboxState target, long pid, @Nullable String why) {
        if (!state.canBecome(target) && state != target) {
            throw SandboxException.conflict(
                    "sandbox " + name + " is " + state.label() + " and cannot become " + target.label());
        }
        Instant startedAt = target == SandboxState.RUNNING ? Instant.now() : started;
        return copy(id, name, created, target, pid, startedAt, why);
    }

    /**
     * This sandbox's configuration (what it was created with) under the given identity and
     * lifecycle: the one place a sandbox is copied field by field, so a configuration field added
     * to the record is carried by every copy.
     */
    private Sandbox copy(
            String newId,
            String newName,
            Instant newCreated,
            SandboxState newState,
            long newPid,
            @Nullable Instant newStarted,
            @Nullable String newError) {
        return new Sandbox(
                newId,
                newName,
                runtime,
                image,
                imageId,
                imageFile,
                accel,
                resources,
                env,
                workdir,
                newCreated,
                newState,
                newPid,
                newStarted,
                newError,
                nat,
                user,
                command,
                namespaces);
    }
}
