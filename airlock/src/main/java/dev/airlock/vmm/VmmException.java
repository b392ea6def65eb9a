package dev.airlock.vmm;

import dev.airlock.sandbox.SandboxException;

/** The VMM could not do what was asked (a host failure); the message says what and, where it can, why. */
public final class VmmException extends SandboxException {
    private static final long serialVersionUID = 1L;

    public VmmException(String message) {
        super(Kind.FAILED, message);
    }

    public VmmException(String message, Throwable cause) {
        super(Kind.FAILED, message, cause);
    }
}
