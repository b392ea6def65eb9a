package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The egress log: one line per record whatever the guest put in it, and bounded on disk. */
class EgressLogTest {
    @TempDir
    Path dir;

    private List<String> lines(String file) throws Exception {
        return Files.readAllLines(dir.resolve(file), StandardCharsets.UTF_8);
    }

    @Test
    void guestTextCannotForgeALine() throws Exception {
        EgressLog log = new EgressLog(dir);
        log.record("DENY", "CONNECT evil.test:443\n2026-01-01T00:00:00.000Z ALLOW CONNECT bank.test:443", "x\r\ny");
        List<String> lines = lines(EgressLog.FILE);
        assertThat(lines).hasSize(1);
        assertThat(lines.getFirst())
                .endsWith(
                        " DENY CONNECT evil.test:443\\n2026-01-01T00:00:00.000Z ALLOW CONNECT bank.test:443 x\\r\\ny");
    }

    @Test
    void aLongLineIsCut() throws Exception {
        new EgressLog(dir).record("DENY", "GET http://a.test/" + "a".repeat(100_000), "too long");
        String line = lines(EgressLog.FILE).getFirst();
        assertThat(line.length()).isLessThan(EgressLog.MAX_LINE + 100);
        assertThat(line).endsWith("more characters)");
    }

    @Test
    void theLogRotatesToOnePreviousFileAtItsCap() throws Exception {
        long cap = 10_000;
        EgressLog log = new EgressLog(dir, cap);
        for (int i = 0; i < 1000; i++) {
            log.record("ALLOW", "CONNECT api.test:443", "line " + i);
        }
        long size = Files.size(dir.resolve(EgressLog.FILE));
        long previous = Files.size(dir.resolve(EgressLog.PREVIOUS));
        assertThat(size).isPositive().isLessThanOrEqualTo(cap);
        assertThat(previous).isPositive().isLessThanOrEqualTo(cap);
        try (var files = Files.list(dir)) {
            assertThat(files.count()).isEqualTo(2);
        }
        // The newest lines are in the current file, the ones just before in the previous one.
        assertThat(lines(EgressLog.FILE).getLast()).endsWith("line 999");
        List<String> before = lines(EgressLog.PREVIOUS);
        int lastBefore = Integer.parseInt(before.getLast().replaceAll(".* line ", ""));
        int firstNow = Integer.parseInt(lines(EgressLog.FILE).getFirst().replaceAll(".* line ", ""));
        assertThat(firstNow).isEqualTo(lastBefore + 1);
    }
}
