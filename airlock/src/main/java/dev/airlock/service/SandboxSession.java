package dev.airlock.service;

import dev.airlock.guest.GuestChannel;

/**
 * A guest-protocol session to a running sandbox (exec with streams, terminals, signals, files),
 * with the sandbox as it was when the session opened. Closing it ends the session, not the
 * sandbox; commands still running are cancelled.
 */
public record SandboxSession(SandboxInfo sandbox, GuestChannel channel) implements AutoCloseable {
    @Override
    public void close() {
        channel.close();
    }
}
