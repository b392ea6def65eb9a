package dev.airlock.backend;

/**
 * A sandbox a backend has just brought up.
 *
 * @param pid the host process that keeps it alive (the VMM, the container's init)
 * @param origin how it came up, for {@code inspect} and tests: {@code cold}, {@code template KEY},
 *     {@code pool, template KEY}, {@code resumed}, {@code fork of NAME}, {@code container}
 * @param agentAnswered whether its agent has already answered (a restore talks to it); when
 *     false the engine waits for the agent before calling the start done
 * @param recordMayLapse whether the running record may be saved without an fsync: a host crash
 *     taking the record back to the one before (not running) loses nothing, because a start
 *     from that record does what a start after the crash would (a claimed gVisor sandbox or
 *     microVM: its layer is its own either way, and a microVM without its pool marker boots cold
 *     from it). False where the record before would start differently (a
 *     microVM's template start on a disk that has since been used)
 */
public record Launch(long pid, String origin, boolean agentAnswered, boolean recordMayLapse) {
    public Launch(long pid, String origin, boolean agentAnswered) {
        this(pid, origin, agentAnswered, false);
    }
}
