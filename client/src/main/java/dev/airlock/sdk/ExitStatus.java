package dev.airlock.sdk;

/**
 * How a streamed command ended.
 *
 * @param exitCode its exit code; -1 when a signal ended it
 * @param signal the signal that ended it, or 0
 */
public record ExitStatus(int exitCode, int signal, boolean timedOut, boolean oomKilled) {
    /** What a shell would report: the exit code, or 128 + the signal. */
    public int status() {
        return signal != 0 ? 128 + signal : exitCode;
    }
}
