package dev.airlock.archive;

import java.io.IOException;

/**
 * An archive from a sandbox holds something the host will not write: the message names the
 * entry and says why.
 */
public final class ArchiveRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    public ArchiveRefusedException(String message) {
        super(message);
    }
}
