package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.client.DaemonClient;
import dev.airlock.guest.DirEntry;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.testing.Cli;
import dev.airlock.testing.MarkerStream;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Limits are enforced, not just written, on both runtimes: a memory hog is OOM-killed and the
 * kill is reported as such (exec status, CLI message and exit code), a fork bomb stops at the
 * process limit, and afterwards the sandbox answers again. Driven the way users drive it: the
 * CLI, and the daemon's shared agent socket.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class SandboxLimitsTest {
    private static final int PIDS = 32;

    /** microvm or container: the suite runs once per runtime. */
    abstract String runtime();

    private AirlockDirs dirs;
    private Cli cli;

    @BeforeAll
    void start() {
        TestHost.ready();
        dirs = TestHost.isolated("limits-" + runtime());
        cli = new Cli(dirs).inRuntime(runtime());
        Cli.Result r =
                cli.run("run", "-d", "--name", "lim", "--memory", "256m", "--pids-limit", Integer.toString(PIDS));
        assertThat(r.exit()).as(r.err()).isZero();
    }

    @AfterAll
    void remove() {
        cli.run("rm", "-f", "lim");
        TestHost.cleanUp(dirs);
    }

    private GuestChannel agent() throws Exception {
        return DaemonClient.connect(dirs).session("lim").channel();
    }

    private static ExitStatus run(GuestChannel ch, ExecSpec spec) throws Exception {
        return ch.exec(spec, OutputStream.nullOutputStream(), OutputStream.nullOutputStream())
                .await();
    }

    @Test
    void aMemoryHogIsOomKilledAndReportedAsSuch() throws Exception {
        try (GuestChannel ch = agent()) {
            // tail keeps the whole of a "line" that never ends: it grows until the kernel kills it
            ExitStatus hog = run(
                    ch,
                    ExecSpec.builder("tail", "/dev/zero")
                            .timeout(Duration.ofMinutes(3))
                            .build());
            assertThat(hog.signal()).isEqualTo(9);
            assertThat(hog.timedOut()).isFalse();
            assertThat(hog.oomKilled()).isTrue();
            // a shell whose child was killed exits normally, and still hears of the kill
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ExitStatus parent = ch.exec(
                            ExecSpec.builder("sh", "-c", "tail /dev/zero; echo after $?")
                                    .timeout(Duration.ofMinutes(3))
                                    .build(),
                            out,
                            OutputStream.nullOutputStream())
                    .await();
            assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("after 137\n");
            assertThat(parent.exitCode()).isZero();
            assertThat(parent.oomKilled()).isTrue();
            // an ordinary command after that is not blamed for the earlier kills
            assertThat(run(ch, ExecSpec.of("true"))).isEqualTo(new ExitStatus(0, 0, false, false));
        }
    }

    @Test
    void theCliSaysAnOomKillWasOneAndHowToAvoidIt() {
        Cli.Result r = cli.run("exec", "lim", "--", "tail", "/dev/zero");
        assertThat(r.exit()).isEqualTo(137);
        assertThat(r.err())
                .contains("killed by the out-of-memory killer")
                .contains("256 MiB")
                .contains("--memory");
        Cli.Result after = cli.run("exec", "lim", "--", "echo", "alive");
        assertThat(after.exit()).as(after.err()).isZero();
        assertThat(after.out()).isEqualTo("alive\n");
    }

    @Test
    void aForkBombStopsAtTheProcessLimit() throws Exception {
        try (GuestChannel ch = agent()) {
            MarkerStream started = new MarkerStream("started");
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            // dash gives up at the first failed fork, so the bomb runs in a child shell; echo is a
            // builtin, so it gets out even while the limit is full
            Execution bomb = ch.exec(
                    ExecSpec.builder(
                                    "sh",
                                    "-c",
                                    "sh -c 'for i in $(seq 100); do sleep 600 & done'; echo started; exec sleep 600")
                            .timeout(Duration.ofMinutes(3))
                            .build(),
                    started,
                    err);
            assertThat(started.await(Duration.ofMinutes(3))).isTrue();
            // While the limit is full no command can start, so count through the agent's own file
            // frames (the agent needs no fork for those)
            int sleepers = 0;
            for (DirEntry e : ch.list("/proc")) {
                if (e.name().chars().allMatch(Character::isDigit)
                        && comm(ch, e.name()).equals("sleep")) {
                    sleepers++;
                }
            }
            assertThat(sleepers).isBetween(PIDS / 2, PIDS);
            assertThat(err.toString(StandardCharsets.UTF_8)).containsAnyOf("Cannot fork", "Resource temporarily");
            assertThat(ch.ping()).isPositive();
            bomb.signal(9);
            assertThat(bomb.await().signal()).isEqualTo(9);
            // Once the bomb's processes are reaped, commands start again
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            ExitStatus alive;
            do {
                alive = run(ch, ExecSpec.of("true"));
            } while (alive.exitCode() != 0 && System.nanoTime() < deadline);
            assertThat(alive.exitCode()).isZero();
        }
    }

    /**
     * {@code --disk} bounds what a sandbox can write: past it, writes fail with ENOSPC inside,
     * the sandbox goes on, and the host's disk holds no more than the limit for it.
     */
    @Test
    void writingPastTheDiskLimitFailsInsideAndSparesTheHost() {
        Cli.Result made = cli.run("run", "-d", "--name", "small", "--disk", "64m");
        assertThat(made.exit()).as(made.err()).isZero();
        try {
            Cli.Result fill = cli.run(
                    "exec",
                    "small",
                    "--",
                    "sh",
                    "-c",
                    "dd if=/dev/zero of=/fill bs=1M count=300 2>&1; echo exit=$?; stat -c %s /fill");
            assertThat(fill.out()).contains("No space left on device").doesNotContain("exit=0");
            long written = Long.parseLong(
                    fill.out().strip().lines().reduce((a, b) -> b).orElseThrow());
            assertThat(written).isLessThanOrEqualTo(64L << 20);
            // the host: everything this suite's sandboxes hold on its filesystem (-x: not what is
            // mounted there, such as the image; the other one's 4 GiB default disk is sparse and
            // nearly empty) stays near the small one's 64 MiB, not the 300 tried
            HostCommand.Result du = HostCommand.run(
                    List.of("du", "-s", "-x", "-B1M", dirs.sandboxes().toString()), null, null);
            assertThat(du.ok()).as(du.output()).isTrue();
            assertThat(Long.parseLong(du.output().split("\\s+")[0])).isLessThan(150);
            Cli.Result after =
                    cli.run("exec", "small", "--", "sh", "-c", "rm /fill && echo room > /again && cat /again");
            assertThat(after.exit()).as(after.err()).isZero();
            assertThat(after.out()).isEqualTo("room\n");
        } finally {
            cli.run("rm", "-f", "small");
        }
    }

    private static String comm(GuestChannel ch, String pid) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ch.readFile("/proc/" + pid + "/comm", out);
        } catch (dev.airlock.guest.GuestException gone) {
            return ""; // the process ended between the listing and the read
        }
        return out.toString(StandardCharsets.UTF_8).strip();
    }
}
