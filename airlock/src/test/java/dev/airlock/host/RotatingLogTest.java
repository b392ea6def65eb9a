package dev.airlock.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A log a guest fills (QEMU's console file, a container's output) stays within its cap while it
 * is being flooded: the writer appends, as QEMU and the runtime do, and the daemon's watch trims
 * it whenever it is written to. Before, nothing trimmed it: the log was as large as the flood.
 */
class RotatingLogTest {
    private static final long CAP = 1 << 20;

    @Test
    void aTrimKeepsTheEndAndTheWriterGoesOnAtTheStart(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("console.log");
        try (OutputStream w = Files.newOutputStream(log, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            for (int i = 0; i < 300; i++) {
                w.write(String.format("line %05d %s%n", i, "x".repeat(4000)).getBytes(StandardCharsets.US_ASCII));
            }
            w.flush();
            assertThat(RotatingLog.trim(log, CAP)).isTrue();
            assertThat(Files.size(log)).isZero();
            assertThat(Files.size(RotatingLog.previous(log))).isEqualTo(CAP / 2);
            assertThat(Files.readString(RotatingLog.previous(log))).endsWith("line 00299 " + "x".repeat(4000) + "\n");
            assertThat(modeOf(RotatingLog.previous(log))).isEqualTo("rw-------");
            w.write("after\n".getBytes(StandardCharsets.US_ASCII));
        }
        assertThat(Files.readString(log)).isEqualTo("after\n");
        assertThat(RotatingLog.trim(log, CAP)).isFalse();
        byte[] tail = RotatingLog.tail(log, 100);
        assertThat(new String(tail, StandardCharsets.US_ASCII))
                .endsWith("x\nafter\n")
                .hasSize(100);
        assertThat(RotatingLog.trim(dir.resolve("none.log"), CAP)).isFalse();
    }

    @Test
    void aFloodedLogStaysNearItsCapWhileWatched(@TempDir Path dir) throws Exception {
        Path log = Files.createFile(dir.resolve("console.log"));
        long flood = 256L << 20;
        long largest;
        try (FileWriteWatch watch = new FileWriteWatch("test-log-cap", p -> {
            try {
                RotatingLog.trim(p, CAP);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        })) {
            watch.watch(log);
            largest = floodAndMeasure(log, flood);
        }
        // The writer outruns each trim by what it writes meanwhile; nothing like the flood stays.
        assertThat(largest).as("the largest the log got").isLessThan(64L << 20);
        assertThat(Files.size(log) + Files.size(RotatingLog.previous(log))).isLessThan(64L << 20);
    }

    /** Appends {@code bytes} in 64 KiB writes; returns the largest size the log had after a write. */
    private static long floodAndMeasure(Path log, long bytes) throws Exception {
        byte[] chunk = new byte[64 << 10];
        Arrays.fill(chunk, (byte) 'z');
        long largest = 0;
        try (OutputStream w = Files.newOutputStream(log, StandardOpenOption.APPEND)) {
            for (long done = 0; done < bytes; done += chunk.length) {
                w.write(chunk);
                largest = Math.max(largest, Files.size(log));
            }
        }
        return largest;
    }

    private static String modeOf(Path p) throws java.io.IOException {
        return java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }
}
