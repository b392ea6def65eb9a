package dev.airlock.sandbox;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Where a sandbox runs: the part of the engine that differs between a microVM and a container.
 * Everything above it (records, the agent protocol, the daemon, workspaces) is shared. Each
 * method takes the sandbox's data directory and runtime (socket) directory, so any process can
 * act on a sandbox another one started.
 */
sealed interface SandboxRuntime permits MicrovmRuntime, ContainerRuntime {

    String name();

    /** Starts the sandbox detached from this process; returns the pid that keeps it alive. */
    long launch(Sandbox s, Path dir, Path runtimeDir);

    /** Whether the sandbox started earlier is still running. */
    boolean running(Sandbox s, Path dir, Path runtimeDir);

    /** Stops it at once; its disk (writable layer) stays. */
    void kill(Sandbox s, Path dir, Path runtimeDir);

    /** After the agent was asked to power off: waits up to {@code grace}, then kills. */
    void awaitStop(Sandbox s, Path dir, Path runtimeDir, Duration grace);

    /** Frees what a stopped sandbox still holds on the host (mounts); safe to repeat. */
    void release(Sandbox s, Path dir, Path runtimeDir);

    /** The unix socket the agent serves the guest protocol on. */
    Path agentSocket(Path runtimeDir);
}
