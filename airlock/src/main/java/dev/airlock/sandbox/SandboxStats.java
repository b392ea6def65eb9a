package dev.airlock.sandbox;

/** A point-in-time reading of a sandbox's host-side cost, like {@code docker stats}. */
public record SandboxStats(
        String name,
        String state,
        long vmmRssBytes,
        long vmmPssBytes,
        double cpuSeconds,
        long diskUsedBytes,
        long diskSizeBytes,
        int memoryLimitMiB,
        int cpus) {}
