package dev.airlock.backend;

/**
 * What a sandbox costs the host right now, as its backend measures it.
 *
 * @param rssBytes resident memory of the process(es) that run it
 * @param pssBytes the same, with shared pages divided among their sharers (0 where unknown)
 * @param cpuSeconds CPU time used so far
 * @param diskUsedBytes space its writable layer takes on the host
 */
public record ResourceUse(long rssBytes, long pssBytes, double cpuSeconds, long diskUsedBytes) {
    public static final ResourceUse NONE = new ResourceUse(0, 0, 0, 0);
}
