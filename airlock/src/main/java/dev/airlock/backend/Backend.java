package dev.airlock.backend;

import dev.airlock.guest.AgentEndpoint;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * Where sandboxes run: a microVM monitor, an OCI container runtime, a user-space kernel. The
 * engine keeps the records and the lifecycle rules and calls a backend for what only it knows:
 * how to bring a sandbox up and down and where its agent listens. Everything above the engine
 * (the service, the daemon, every front end) is the same for all backends.
 *
 * <p>A backend works only inside the sandbox's {@link SandboxPaths} and finds a sandbox again
 * from them, so any process can act on a sandbox another one started. Optional operations
 * ({@link #pause}, {@link #resume}, {@link #fork}) are offered through {@link #capabilities()};
 * the engine never calls one a backend does not declare.
 */
public interface Backend {

    /** The runtime name users choose with {@code --runtime}: {@code microvm}, {@code container}, ... */
    String name();

    /** What separates a sandbox from the host, in words for {@code doctor} and {@code inspect}. */
    String isolation(Sandbox s);

    Set<Capability> capabilities();

    /**
     * How this backend fits this host: its isolation boundary here, whether it runs and why not,
     * its measured start. Measured once (cached across processes); the registry picks the
     * default runtime from it and {@code doctor} prints it.
     */
    HostFit hostFit();

    /**
     * Readies what this backend needs on this host before its first sandbox (a microVM's kernel
     * and accelerator decision, gVisor's platform), building what is missing with progress. Setup
     * calls it for the default runtime; the others are readied on first use.
     */
    default void prepareHost() {}

    /**
     * Why this backend cannot run sandboxes on this host (its tools are missing or do not work),
     * or empty when it can. Cheap and cached: the registry asks before every create.
     */
    Optional<String> unavailableReason();

    /**
     * The accelerator a new sandbox gets, recorded with it: {@code kvm} or {@code tcg} for a
     * microVM (the request, or what this host was found to run), {@code none} elsewhere.
     */
    default String accel(@Nullable String requested) {
        return "none";
    }

    /**
     * Readies a new sandbox's files in {@code paths.dir()} (which exists): its writable layer,
     * empty or started from {@code layerTemplate} (a workspace whose setup already ran). Called
     * with the store locked; slow work belongs in {@link #start}.
     */
    void prepare(Sandbox s, SandboxPaths paths, @Nullable Path layerTemplate);

    /**
     * An instance of {@code fresh}'s configuration that is already up (a warm-pool VM), if the
     * backend keeps any: its id, which the new sandbox takes. Its directory is the sandbox's from
     * then on; {@link #start} hands it its identity.
     */
    default Optional<String> claimReady(Sandbox fresh) {
        return Optional.empty();
    }

    /** Brings the sandbox up; its disk is kept from any earlier run. */
    Launch start(Sandbox s, SandboxPaths paths);

    /** Whether the sandbox started earlier is still running. */
    boolean running(Sandbox s, SandboxPaths paths);

    /** Stops it at once; its writable layer stays. Safe when it is not running. */
    void kill(Sandbox s, SandboxPaths paths);

    /** After the agent was asked to power off: waits up to {@code grace}, then kills. */
    void awaitStop(Sandbox s, SandboxPaths paths, Duration grace);

    /** Frees what a stopped sandbox still holds on the host (mounts); safe to repeat. */
    void release(Sandbox s, SandboxPaths paths);

    /**
     * Frees everything a sandbox that is about to be deleted holds, what is still busy too (a
     * mount detached lazily: what is under it is deleted next, so no later start can mount it
     * again); safe to repeat. A stop's {@link #release} instead leaves a busy disk mounted for the
     * next start.
     */
    default void releaseForRemoval(Sandbox s, SandboxPaths paths) {
        release(s, paths);
    }

    /** Where the running sandbox's agent is reached. */
    AgentEndpoint agent(Sandbox s, SandboxPaths paths);

    /** The writable layer: every change the sandbox made to its filesystem (a disk file or a directory). */
    Path writableLayer(SandboxPaths paths);

    /** The console or runtime log of the sandbox (kernel and agent output), which may not exist yet. */
    Path log(SandboxPaths paths);

    /** What the sandbox costs the host now; {@link ResourceUse#NONE} parts when it is not running. */
    ResourceUse usage(Sandbox s, SandboxPaths paths);

    /**
     * Saves a running sandbox to {@code paths.dir()} and ends its process. {@code recordPaused}
     * runs once the state is safely saved and before the process ends, so nobody looking
     * meanwhile takes the exit for a crash. Needs {@link Capability#PAUSE}.
     */
    default void pause(Sandbox s, SandboxPaths paths, Runnable recordPaused) {
        throw unsupported(s, Capability.PAUSE);
    }

    /** Brings a paused sandbox back with its processes. Needs {@link Capability#PAUSE}. */
    default Launch resume(Sandbox s, SandboxPaths paths) {
        throw unsupported(s, Capability.PAUSE);
    }

    /**
     * Continues a sandbox that a pause or fork cut short by a crash left stopped (saved, but
     * neither ended nor continued), so its record, which still says running, is true again.
     * Harmless on one that runs; the default is for backends that never stop a sandbox so.
     */
    default void thaw(Sandbox s, SandboxPaths paths) {}

    /** Drops the saved state of a paused sandbox that is stopped or removed instead of resumed. */
    default void discardPaused(SandboxPaths paths) {}

    /**
     * Clones a running sandbox into each of {@code clones} (records already saved, directories
     * made): memory, processes and files as they were at one instant. The source keeps running.
     * Needs {@link Capability#FORK}.
     */
    default List<CloneResult> fork(Sandbox source, SandboxPaths sourcePaths, List<Clone> clones) {
        throw unsupported(source, Capability.FORK);
    }

    /** A clone to be made by {@link #fork}: its record and its directories. */
    record Clone(Sandbox sandbox, SandboxPaths paths) {}

    /** Lets go of what the backend holds of an image that is being removed (a shared mount of it). */
    default void releaseImage(Path imageFile) {}

    /**
     * Removes what a process of this backend that died in the middle of its work left behind
     * outside any sandbox's directory (a fork's memory image); the daemon calls it at start.
     */
    default void sweepLeftovers() {}

    /** Ends what the backend keeps beyond sandboxes (warm pools), for a daemon shutting down. */
    default void close() {}

    /** The error for an operation this backend does not offer. */
    static SandboxException unsupported(Sandbox s, Capability c) {
        return SandboxException.conflict(
                c.label() + " is not available for '" + s.name() + "': its runtime (" + s.runtime() + ") cannot do it");
    }
}
