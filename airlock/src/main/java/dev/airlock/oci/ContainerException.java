package dev.airlock.oci;

import dev.airlock.sandbox.SandboxException;

/** A container could not be created, driven or cleaned up (a host failure); the message says which step failed. */
public final class ContainerException extends SandboxException {
    private static final long serialVersionUID = 1L;

    public ContainerException(String message) {
        super(Kind.FAILED, message);
    }

    public ContainerException(String message, Throwable cause) {
        super(Kind.FAILED, message, cause);
    }
}
