package dev.airlock.sdk;

import java.nio.charset.StandardCharsets;

/**
 * How a command ended and everything it printed (what a blocking {@link Sandbox#exec(Command)}
 * returns).
 *
 * @param exitCode the command's exit code; -1 when a signal ended it
 * @param signal the signal that ended it, or 0
 * @param timedOut the command's timeout killed it
 * @param oomKilled the sandbox's out-of-memory killer killed a process while it ran
 */
public record ExecResult(int exitCode, int signal, boolean timedOut, boolean oomKilled, byte[] stdout, byte[] stderr) {

    /** What a shell would report: the exit code, or 128 + the signal. */
    public int status() {
        return signal != 0 ? 128 + signal : exitCode;
    }

    public String stdoutText() {
        return new String(stdout, StandardCharsets.UTF_8);
    }

    public String stderrText() {
        return new String(stderr, StandardCharsets.UTF_8);
    }
}
