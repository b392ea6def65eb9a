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
    void aTrimFreesAllButTheEndAndLosesNothingWrittenAfter(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("console.log");
        try (OutputStream w = Files.newOutputStream(log, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            for (int i = 0; i < 300; i++) {
                w.write(String.format("line %05d %s%n", i, "x".repeat(4000)).getBytes(StandardCharsets.US_ASCII));
            }
            w.flush();
            long size = Files.size(log);
            assertThat(RotatingLog.trim(log, CAP)).isTrue();
            assertThat(allocated(log)).isLessThanOrEqualTo(CAP / 2 + 8192);
            assertThat(Files.size(log)).as("the writer's offsets stay valid").isEqualTo(size);
            // Written after the trim, by the writer that was appending all along: kept.
            w.write("after\n".getBytes(StandardCharsets.US_ASCII));
        }
        assertThat(RotatingLog.trim(log, CAP)).isFalse();
        assertThat(new String(RotatingLog.tail(log, 100), StandardCharsets.US_ASCII))
                .endsWith("x\nafter\n")
                .hasSize(100);
        // Asked for more than is kept, the reader gets the data after the hole, never its zeros.
        String all = new String(RotatingLog.tail(log, (int) CAP * 4), StandardCharsets.US_ASCII);
        assertThat(all).doesNotContain("\0").contains("line 00299 ").endsWith("after\n");
        assertThat(all.length()).isLessThanOrEqualTo((int) CAP / 2 + 8192);
        assertThat(RotatingLog.trim(dir.resolve("none.log"), CAP)).isFalse();
        assertThat(RotatingLog.tail(dir.resolve("none.log"), 100)).isEmpty();
    }

    @Test
    void aLogThatIsASymlinkIsNotFollowed(@TempDir Path dir) throws Exception {
        Path other = dir.resolve("other");
        Files.write(other, new byte[4 << 20]);
        long before = allocated(other);
        Path log = Files.createSymbolicLink(dir.resolve("console.log"), other);
        assertThat(RotatingLog.trim(log, CAP)).isFalse();
        assertThat(allocated(other)).isEqualTo(before);
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
        assertThat(largest).as("the most disk the log took").isLessThan(64L << 20);
        assertThat(allocated(log)).isLessThan(64L << 20);
    }

    /** Appends {@code bytes} in 64 KiB writes; returns the most disk the log took after a write. */
    private static long floodAndMeasure(Path log, long bytes) throws Exception {
        byte[] chunk = new byte[64 << 10];
        Arrays.fill(chunk, (byte) 'z');
        long largest = 0;
        try (OutputStream w = Files.newOutputStream(log, StandardOpenOption.APPEND)) {
            for (long done = 0; done < bytes; done += chunk.length) {
                w.write(chunk);
                largest = Math.max(largest, allocated(log));
            }
        }
        return largest;
    }

    private static long allocated(Path p) throws Exception {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            return sys.allocatedBytes(p.toString());
        }
    }
}
