package dev.airlock.ociruntime;

/**
 * A failure reported the way runc reports one: a message on stderr (and in {@code --log}) and
 * exit status 1, which is what conmon and the containerd shim expect from every failed command.
 */
final class RuntimeError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    RuntimeError(String message) {
        super(message);
    }

    RuntimeError(String message, Throwable cause) {
        super(message, cause);
    }
}
