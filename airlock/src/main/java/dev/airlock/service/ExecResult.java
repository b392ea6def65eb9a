package dev.airlock.service;

/**
 * How a buffered command ended and what it printed.
 *
 * @param signal the signal that killed it, or 0
 * @param truncated some output was beyond {@link #MAX_OUTPUT} and dropped
 */
public record ExecResult(
        int exitCode,
        int signal,
        boolean timedOut,
        boolean oomKilled,
        String stdout,
        String stderr,
        boolean truncated) {
    /** Per stream. */
    public static final int MAX_OUTPUT = 16 << 20;
}
