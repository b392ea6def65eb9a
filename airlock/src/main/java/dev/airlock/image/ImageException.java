package dev.airlock.image;

import dev.airlock.sandbox.SandboxException;

/**
 * A problem with kernels or images: the message says what is wrong and what to do. Without a
 * kind it is the user's (an unknown image, a bad spec); with a cause it is the host's (a build
 * that failed).
 */
public final class ImageException extends SandboxException {
    private static final long serialVersionUID = 1L;

    public ImageException(String message) {
        super(Kind.INVALID, message);
    }

    public ImageException(Kind kind, String message) {
        super(kind, message);
    }

    public ImageException(String message, Throwable cause) {
        super(Kind.FAILED, message, cause);
    }
}
