package dev.airlock.service;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * Guest-protocol sessions carried as raw frames by a transport (the HTTP API's session route):
 * the service checks the sandbox when the session is opened, so the transport can answer an
 * error before it commits to a stream, and then relays frames both ways until either side ends.
 */
public interface FrameSessions {

    /** Checks that {@code ref} names a running sandbox (resuming one this daemon paused for idleness). */
    Opened open(String ref);

    /** A session ready to serve one client. */
    interface Opened {
        SandboxInfo sandbox();

        /** Relays the client's frames from {@code in} and the sandbox's to {@code out}; returns when either ends. */
        void serve(InputStream in, OutputStream out) throws IOException;
    }
}
