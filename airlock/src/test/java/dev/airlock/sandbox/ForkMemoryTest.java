package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A fork shares the source's RAM instead of copying it: the clones map the source's saved RAM
 * image (a mapped-ram file) copy-on-write, and the source, whose RAM is a template mapped
 * privately, does not grow by its whole RAM when the save reads every page of it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ForkMemoryTest {
    private AirlockDirs dirs;
    private SandboxEngine engine;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("forkmem");
        engine = Engines.engine(dirs, Progress.STDERR);
    }

    @AfterAll
    void tearDown() {
        for (Sandbox s : engine.list()) {
            engine.remove(s.id(), true);
        }
        TestHost.cleanUp(dirs);
    }

    private String sh(String sandbox, String script) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (GuestChannel ch = engine.connect(engine.inspect(sandbox), Duration.ofSeconds(30))) {
            ExitStatus st = ch.exec(ExecSpec.of("sh", "-c", script), out, err).await();
            assertThat(st.exitCode()).as("%s: %s", script, err).isZero();
        }
        return out.toString(StandardCharsets.UTF_8).strip();
    }

    private static long pss(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "smaps_rollup"))) {
            if (line.startsWith("Pss:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
            }
        }
        throw new IllegalStateException("no Pss line for " + pid);
    }

    /** The file offset of the process's mapping of exactly {@code bytes} (the guest RAM). */
    private static long ramMappingOffset(long pid, long bytes) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "maps"))) {
            String[] f = line.split("\\s+");
            String[] range = f[0].split("-");
            if (Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16) == bytes && f.length >= 6) {
                return Long.parseLong(f[2], 16);
            }
        }
        throw new IllegalStateException("no " + bytes + "-byte mapping in " + pid);
    }

    @Test
    void clonesMapTheSourcesRamAndTheSourceDoesNotGrowByIt() throws Exception {
        Sandbox src = engine.start(engine.create(CreateOptions.builder()
                        .name("mem-src")
                        .runtime("microvm")
                        .build())
                .name());
        assertThat(engine.origin(src)).startsWith("template ");
        sh("mem-src", "echo from-source > /root/data");
        long ram = (long) Resources.DEFAULT.memoryMiB() << 20;
        long before = pss(engine.inspect("mem-src").vmmPid());

        List<Sandbox> clones = engine.fork("mem-src", List.of("mem-src-1", "mem-src-2"));

        long after = pss(engine.inspect("mem-src").vmmPid());
        // Saving reads all 512 MiB; before the fix the source kept them all (~540 MiB PSS).
        assertThat(after)
                .as("source PSS before %d MiB, after %d MiB", before >> 20, after >> 20)
                .isLessThan(before + ram / 8);
        for (Sandbox c : clones) {
            assertThat(sh(c.name(), "cat /root/data")).isEqualTo("from-source");
            long pid = engine.inspect(c.name()).vmmPid();
            // Its RAM is the image inside the fork's mapped-ram file, past the file's header.
            assertThat(ramMappingOffset(pid, ram)).isPositive();
            assertThat(pss(pid)).as("PSS of clone %s", c.name()).isLessThan(ram / 4);
        }
        assertThat(sh("mem-src", "cat /root/data")).isEqualTo("from-source");
    }
}
