package dev.airlock.guest;

import java.io.InputStream;
import java.io.OutputStream;

/**
 * A TCP connection on the guest's loopback, carried as one stream of the agent session: what a
 * guest process sent to a port the agent listens on ({@link GuestChannel#accept}), or a connection
 * the agent made to a guest server ({@link GuestChannel#connect}).
 */
public interface GuestSocket extends AutoCloseable {
    /** Bytes from the guest side; end of stream when the guest side shut down its writing half. */
    InputStream input();

    /** Bytes to the guest side; closing it shuts down the writing half only (like TCP's FIN). */
    OutputStream output();

    /** The guest port this connection is on. */
    int port();

    /** Ends the connection in both directions at once (a reset if it had not finished). */
    @Override
    void close();
}
