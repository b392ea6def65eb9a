package dev.airlock.net;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.temporal.ChronoUnit;

/** One sandbox's egress decisions, one line each, in {@code egress.log} in its directory. */
public final class EgressLog {
    public static final String FILE = "egress.log";
    private final Path file;

    public EgressLog(Path sandboxDir) {
        this.file = sandboxDir.resolve(FILE);
    }

    public Path file() {
        return file;
    }

    /** E.g. {@code 2026-11-22T23:10:00.123Z DENY CONNECT evil.test:443 evil.test is not on the allowlist}. */
    public synchronized void record(String verdict, String request, String detail) {
        String line =
                Instant.now().truncatedTo(ChronoUnit.MILLIS) + " " + verdict + " " + request + " " + detail + "\n";
        try {
            Files.writeString(file, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.err.println("airlockd: cannot write " + file + ": " + e.getMessage());
        }
    }
}
