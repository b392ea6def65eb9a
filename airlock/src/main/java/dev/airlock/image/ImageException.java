package dev.airlock.image;

/** A user-facing problem with kernels or images: the message says what is wrong and what to do. */
public final class ImageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ImageException(String message) {
        super(message);
    }

    public ImageException(String message, Throwable cause) {
        super(message, cause);
    }
}
