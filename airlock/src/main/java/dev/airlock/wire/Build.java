package dev.airlock.wire;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Which build of Airlock this process runs: the jar's path and modification time when the
 * process started. Read once, so a running daemon never takes on the identity of a jar rebuilt
 * under it; a client of another build replaces the daemon (sandboxes keep running).
 */
public final class Build {
    private static final String ID = current();

    private Build() {}

    public static String id() {
        return ID;
    }

    private static String current() {
        try {
            Path code = Path.of(Build.class
                    .getProtectionDomain()
                    .getCodeSource()
                    .getLocation()
                    .toURI());
            return Files.isRegularFile(code)
                    ? code + "@" + Files.getLastModifiedTime(code).toMillis()
                    : "dev";
        } catch (Exception e) {
            return "unknown";
        }
    }
}
