package dev.airlock.net;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One sandbox's egress decisions, one line each, in {@code egress.log} in its directory.
 *
 * <p>Every field is escaped ({@link UntrustedText#logField}): targets and headers come from the
 * guest, and a raw line feed in them would forge a line. A line is at most {@value #MAX_LINE}
 * characters. The file is bounded: once a line would take it past {@value #MAX_BYTES} bytes it
 * becomes {@code egress.log.1} (replacing the one before) and a new file starts, so a sandbox's
 * log never takes more than twice that on disk.
 */
public final class EgressLog {
    public static final String FILE = "egress.log";
    /** The previous file, kept after a rotation. */
    public static final String PREVIOUS = FILE + ".1";

    static final long MAX_BYTES = 8L << 20;
    static final int MAX_LINE = 4096;

    /**
     * One lock per file: a sandbox has several loggers (proxy, bridge, firewall) on one file,
     * and a rotation must not interleave with another's append.
     */
    private static final ConcurrentHashMap<Path, Object> LOCKS = new ConcurrentHashMap<>();

    private final Path file;
    private final long maxBytes;

    public EgressLog(Path sandboxDir) {
        this(sandboxDir, MAX_BYTES);
    }

    EgressLog(Path sandboxDir, long maxBytes) {
        this.file = sandboxDir.resolve(FILE).toAbsolutePath().normalize();
        this.maxBytes = maxBytes;
    }

    public Path file() {
        return file;
    }

    /** E.g. {@code 2026-11-22T23:10:00.123Z DENY CONNECT evil.test:443 evil.test is not on the allowlist}. */
    public void record(String verdict, String request, String detail) {
        String line = Instant.now().truncatedTo(ChronoUnit.MILLIS) + " " + UntrustedText.logField(verdict) + " "
                + UntrustedText.logField(request) + " " + UntrustedText.logField(detail);
        if (line.length() > MAX_LINE) {
            line = line.substring(0, MAX_LINE) + "... (" + (line.length() - MAX_LINE) + " more characters)";
        }
        byte[] bytes = (line + "\n").getBytes(StandardCharsets.UTF_8);
        synchronized (LOCKS.computeIfAbsent(file, f -> new Object())) {
            try {
                rotateIfFull(bytes.length);
                Files.write(file, bytes, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                System.err.println("airlockd: cannot write " + file + ": " + e.getMessage());
            }
        }
    }

    private void rotateIfFull(int adding) throws IOException {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            return;
        }
        if (size > 0 && size + adding > maxBytes) {
            Files.move(file, file.resolveSibling(PREVIOUS), StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
