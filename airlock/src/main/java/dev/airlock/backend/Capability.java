package dev.airlock.backend;

/**
 * What a backend can do beyond the lifecycle every backend has (create, start, stop, kill,
 * remove, sessions). The engine asks for a capability before an operation that needs one and
 * refuses the operation with a clear error when the sandbox's backend lacks it.
 */
public enum Capability {
    /** Save a running sandbox (memory, processes) to disk, end its process, and bring it back. */
    PAUSE("pause and resume"),
    /** Clone a running sandbox, memory and processes included. */
    FORK("fork"),
    /** Start new sandboxes from a saved, already booted instance instead of booting. */
    TEMPLATES("templates"),
    /** Keep started instances ready, so a create only claims one. */
    WARM_POOL("a warm pool"),
    /** A NIC with user-mode NAT ({@code --network nat}). */
    NAT("--network nat"),
    /** Join existing network, IPC, UTS or PID namespaces by path (an OCI runtime's pod containers). */
    JOIN_NAMESPACES("joining namespaces by path");

    private final String label;

    Capability(String label) {
        this.label = label;
    }

    /** For messages: "pause and resume", "fork", ... */
    public String label() {
        return label;
    }
}
