package dev.airlock.host;

/**
 * Where long work (kernel and image builds, setup) reports what it is doing. The CLI prints to
 * stderr so stdout stays clean for results; tests collect the lines.
 */
@FunctionalInterface
public interface Progress {
    void step(String message);

    Progress STDERR = message -> System.err.println("airlock: " + message);
    Progress SILENT = message -> {};
}
