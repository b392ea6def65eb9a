package dev.airlock.container;

/** A container could not be created, driven or cleaned up; the message says which step failed. */
public final class ContainerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ContainerException(String message) {
        super(message);
    }

    public ContainerException(String message, Throwable cause) {
        super(message, cause);
    }
}
