package dev.airlock.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A daemon with AIRLOCK_IDLE_PAUSE pauses an unused microVM sandbox and resumes it on its next exec. */
class IdlePauseTest {
    private static final Map<String, String> IDLE_AFTER_2S = Map.of("AIRLOCK_IDLE_PAUSE", "2");
    private static final byte[] NO_INPUT = new byte[0];

    private final AirlockDirs dirs = TestHost.isolated("idle");

    @AfterEach
    void cleanUp() {
        TestHost.cleanUp(dirs);
    }

    @Test
    void anIdleSandboxPausesItselfAndTheNextExecResumesIt() throws Exception {
        TestHost.ready();
        Cli cli = new Cli(dirs);
        Cli.Result run = cli.run(IDLE_AFTER_2S, NO_INPUT, "run", "-d", "--name", "sleepy");
        assertThat(run.exit()).as(run.err()).isZero();
        Cli.Result mark = cli.run(
                IDLE_AFTER_2S,
                NO_INPUT,
                "exec",
                "sleepy",
                "--",
                "sh",
                "-c",
                "echo before > /tmp/mark; nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done' >/dev/null 2>&1 &");
        assertThat(mark.exit()).as(mark.err()).isZero();

        assertThat(awaitPaused(cli)).contains("\"PAUSED\"");

        Cli.Result again = cli.run(
                IDLE_AFTER_2S,
                NO_INPUT,
                "exec",
                "sleepy",
                "--",
                "sh",
                "-c",
                "cat /tmp/mark; n=$(cat /tmp/n); while [ \"$(cat /tmp/n)\" -le \"$n\" ]; do sleep 0.05; done; echo counting");
        assertThat(again.exit()).as(again.err()).isZero();
        assertThat(again.out()).isEqualTo("before\ncounting\n");
        // Unused again, it pauses again.
        assertThat(awaitPaused(cli)).contains("\"PAUSED\"");
        cli.run(IDLE_AFTER_2S, NO_INPUT, "rm", "-f", "sleepy");
    }

    /** The daemon checks once a second: reads the record (bounded) until the daemon has paused it. */
    private static String awaitPaused(Cli cli) {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        String state = "";
        while (System.nanoTime() < deadline) {
            state = cli.run(IDLE_AFTER_2S, NO_INPUT, "inspect", "sleepy").out();
            if (state.contains("\"PAUSED\"")) {
                break;
            }
        }
        return state;
    }
}
