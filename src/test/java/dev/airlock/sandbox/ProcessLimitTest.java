package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The process-count limit is enforced in the guest: a fork bomb stops at it, the sandbox stays usable. */
class ProcessLimitTest {
    private final AirlockDirs dirs = TestHost.isolated("pids");

    @AfterEach
    void cleanUp() {
        TestHost.cleanUp(dirs);
    }

    private static String run(GuestChannel ch, String script) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ch.exec(ExecSpec.of("sh", "-c", script), out, OutputStream.nullOutputStream())
                .await();
        return out.toString(StandardCharsets.UTF_8);
    }

    private static String read(GuestChannel ch, String path) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ch.readFile(path, out);
        return out.toString(StandardCharsets.UTF_8).strip();
    }

    @Test
    void aForkBombHitsThePidsLimit() throws Exception {
        TestHost.ready();
        SandboxEngine engine = new SandboxEngine(dirs, Progress.STDERR);
        Resources limited = new Resources(1, 256, 512, 32, null);
        Sandbox s = engine.start(
                engine.create(new CreateOptions("pids", "base", limited, Map.of(), null, null, null, "microvm"))
                        .name());
        try (GuestChannel ch = engine.connect(s, Duration.ofSeconds(30))) {
            run(ch, "for i in $(seq 1 100); do sleep 5 >/dev/null 2>&1 & done");
            // While the cgroup is full no command can start, so read it through the agent's own
            // file frames (the agent is outside the limited cgroup and needs no fork for that).
            int current = Integer.parseInt(read(ch, "/sys/fs/cgroup/sandbox/pids.current"));
            assertThat(current).isBetween(20, 32);
            String events = read(ch, "/sys/fs/cgroup/sandbox/pids.events");
            assertThat(events).startsWith("max ");
            assertThat(Integer.parseInt(events.substring(4))).isPositive();
            assertThat(ch.ping()).isPositive();
            // Once the bomb's processes end, commands run again: wait for the cgroup to drain.
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!read(ch, "/sys/fs/cgroup/sandbox/pids.current").equals("0")) {
                assertThat(System.nanoTime()).as("the bomb's processes exit").isLessThan(deadline);
                ch.ping();
            }
            assertThat(run(ch, "echo alive")).isEqualTo("alive\n");
        } finally {
            engine.remove(s.name(), true);
        }
    }
}
