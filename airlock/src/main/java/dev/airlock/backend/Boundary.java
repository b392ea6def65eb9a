package dev.airlock.backend;

/**
 * What separates a sandbox from the host, in the order Airlock prefers them for the default
 * runtime: the first that works on a host is its default (see {@link Backends#defaultRuntime}).
 */
public enum Boundary {
    /** A guest kernel in a hardware-virtualized VM (KVM). */
    HARDWARE_VIRTUALIZATION("hardware virtualization"),
    /** A kernel in user space between the sandbox and the host's (gVisor's Sentry). */
    USER_SPACE_KERNEL("user-space kernel"),
    /** The host's kernel, shared, behind namespaces, cgroups and seccomp. */
    NAMESPACES("namespaces"),
    /**
     * A guest kernel under software CPU emulation (QEMU TCG): a separate kernel, but QEMU's
     * documentation says TCG is not a security boundary, and it is slow; last resort.
     */
    SOFTWARE_EMULATION("software emulation");

    private final String label;

    Boundary(String label) {
        this.label = label;
    }

    /** In words, for doctor and inspect. */
    public String label() {
        return label;
    }
}
