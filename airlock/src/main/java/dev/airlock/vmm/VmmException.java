package dev.airlock.vmm;

/** The VMM could not do what was asked; the message says what and, where it can, why. */
public final class VmmException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public VmmException(String message) {
        super(message);
    }

    public VmmException(String message, Throwable cause) {
        super(message, cause);
    }
}
