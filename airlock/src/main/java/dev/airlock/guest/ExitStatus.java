package dev.airlock.guest;

import java.nio.ByteBuffer;

/**
 * How a process ended.
 *
 * @param exitCode the code passed to exit(2), meaningful when {@code signal} is 0
 * @param signal the signal that killed it, or 0
 * @param timedOut the spec's timeout expired and the agent killed the process group
 * @param oomKilled the kernel's out-of-memory killer killed a process in the sandbox while this
 *     command ran: the command itself when {@code signal} is 9, else one of its children (or,
 *     with concurrent commands, possibly another command's process)
 */
public record ExitStatus(int exitCode, int signal, boolean timedOut, boolean oomKilled) {
    /** The status a shell would report: the exit code, or 128 + signal. */
    public int shellStatus() {
        return signal != 0 ? 128 + signal : exitCode;
    }

    /**
     * Decodes an EXIT payload ({@code i32 code, i32 signal, u8 flags}); the reader has checked it
     * has at least 9 bytes, later bytes are for future versions.
     */
    static ExitStatus fromPayload(byte[] payload) {
        ByteBuffer in = ByteBuffer.wrap(payload);
        int code = in.getInt();
        int signal = in.getInt();
        byte flags = in.get();
        return new ExitStatus(code, signal, (flags & 1) != 0, (flags & 2) != 0);
    }
}
