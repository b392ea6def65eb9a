package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.PageCache;
import dev.airlock.testing.TestHost;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A daemon killed in the middle of a pause or a fork (microVM, gVisor) leaves nothing wedged: the next
 * daemon, or anyone who looks at the sandbox, continues a VM left stopped, ends a VMM left
 * behind, removes clones that never started and the memory image of the dead fork. The crash
 * windows are milliseconds wide, so the daemon stops dead at named failpoints ({@code
 * AIRLOCK_FAILPOINT}), as {@code kill -9} would there. Before: a VM stopped for saving stayed
 * stopped under a record saying running (every exec hung), a paused sandbox kept its old VMM
 * running, clones stayed "created" with nothing behind them, fork images stayed on disk. Also
 * here: what pause and fork leave on disk is the owner's alone.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SnapshotCrashTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** Far above a TCG exec (about a second under load); a stopped VM never answers at all. */
    private static final Duration ANSWER = Duration.ofSeconds(90);

    private AirlockDirs dirs;
    private Cli cli;
    private Cli gvisor;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("snapshot-crash");
        cli = new Cli(dirs).inRuntime("microvm");
        gvisor = new Cli(dirs).inRuntime("gvisor");
    }

    @AfterAll
    void tearDown() {
        for (String name : cli.run("ps", "-a", "-q").out().lines().toList()) {
            cli.run("rm", "-f", name);
        }
        TestHost.cleanUp(dirs);
    }

    private static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as(r.err()).isZero();
        return r;
    }

    private JsonNode inspect(String name) {
        return JSON.readTree(ok(cli.run("inspect", name)).out());
    }

    /** The command fails: the daemon doing its work stopped dead at {@code step}. */
    private void crashAt(String step, String... args) {
        Cli.Result r = cli.withDaemonFailpoint(step, args);
        assertThat(r.exit()).as(r.err()).isNotZero();
    }

    /** {@code airlock exec NAME -- echo alive}, given up after {@link #ANSWER}: a stopped VM never answers. */
    private String answers(String name) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cli.argv("exec", name, "--", "echo", "alive")).redirectErrorStream(true);
        cli.environment(pb.environment());
        Process p = pb.start();
        if (!p.waitFor(ANSWER.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "no answer within " + ANSWER;
        }
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    }

    private Path dirOf(String name) {
        return dirs.sandboxes().resolve(inspect(name).path("id").asString());
    }

    @Test
    void aPauseCutShortAfterTheSaveLeavesTheSandboxRunning() throws Exception {
        ok(cli.run("run", "-d", "--name", "p1"));
        crashAt("microvm-pause-saved", "pause", "p1");
        // The VM is stopped for saving; the record still says running.
        assertThat(answers("p1")).isEqualTo("alive");
        assertThat(inspect("p1").path("state").asString()).isEqualTo("RUNNING");
        assertThat(dirOf("p1").resolve("paused.state")).doesNotExist();
        assertThat(dirOf("p1").resolve(".operation")).doesNotExist();
        ok(cli.run("rm", "-f", "p1"));
    }

    @Test
    void aPauseCutShortAfterItsRecordEndsTheVmmLeftBehind() throws Exception {
        ok(cli.run("run", "-d", "--name", "p2"));
        ok(cli.run("exec", "p2", "--", "sh", "-c", "echo kept > /root/mark"));
        long vmm = inspect("p2").path("pid").asLong();
        assertThat(vmm).isPositive();
        crashAt("microvm-pause-recorded", "pause", "p2");
        assertThat(ProcessHandle.of(vmm).map(ProcessHandle::isAlive).orElse(false))
                .as("the stopped VMM the crash left")
                .isTrue();
        assertThat(inspect("p2").path("state").asString()).isEqualTo("PAUSED");
        assertThat(awaitGone(vmm))
                .as("the VMM left behind is ended by the next look")
                .isTrue();

        Path dir = dirOf("p2");
        assertOwnerOnly(dir, "paused.state", "layer.ext4", "console.log", "sandbox.json");
        ok(cli.run("resume", "p2"));
        assertThat(ok(cli.run("exec", "p2", "--", "cat", "/root/mark")).out()).isEqualTo("kept\n");
        ok(cli.run("rm", "-f", "p2"));
    }

    @Test
    void aForkCutShortLeavesItsSourceRunningAndNoMemoryImage() throws Exception {
        ok(cli.run("run", "-d", "--name", "f1"));
        crashAt("microvm-fork-saved", "fork", "f1");
        Path forks = dirs.data().resolve("forks");
        assertThat(children(forks)).as("the dead fork's work").hasSize(1);
        assertThat(answers("f1")).isEqualTo("alive");
        assertThat(children(forks)).as("swept when the next daemon started").isEmpty();
        ok(cli.run("rm", "-f", "f1"));
    }

    @Test
    void clonesAForkRecordedButNeverStartedAreRemoved() throws Exception {
        ok(cli.run("run", "-d", "--name", "f2"));
        crashAt("fork-clones-recorded", "fork", "f2", "-n", "2");
        List<String> all = ok(cli.run("ps", "-a", "-q")).out().lines().toList();
        assertThat(all).doesNotContain("f2-1", "f2-2");
        assertThat(answers("f2")).isEqualTo("alive");

        // A fork that ends as it should leaves owner-only files behind, and a memory image nowhere.
        ok(cli.run("fork", "f2", "-n", "1"));
        assertThat(answers("f2-1")).isEqualTo("alive");
        assertOwnerOnly(dirOf("f2-1"), "layer.ext4", "console.log", "sandbox.json");
        assertThat(children(dirs.data().resolve("forks"))).isEmpty();
        List<String> open = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(dirs.data())) {
            walk.filter(p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)).forEach(p -> {
                String mode = mode(p);
                if (!mode.endsWith("------")) {
                    open.add(p + " " + mode);
                }
            });
        }
        assertThat(open)
                .as("directories of the data directory others can enter")
                .isEmpty();
        HostCommand.Result nobody = HostCommand.run(
                List.of(
                        "setpriv",
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        "--",
                        "ls",
                        dirOf("f2-1").toString()),
                null,
                null);
        assertThat(nobody.ok()).as(nobody.output()).isFalse();
        ok(cli.run("rm", "-f", "f2", "f2-1"));
    }

    /**
     * gVisor: a pause cut short after the agent closed its host socket for the checkpoint. Before,
     * the sandbox ran on under a record saying running, but its agent never listened again:
     * every exec failed until a stop, which lost its processes.
     */
    @Test
    void aGvisorPauseCutShortLeavesTheSandboxAnswering() throws Exception {
        ok(gvisor.run("run", "-d", "--name", "g1"));
        ok(cli.run("exec", "g1", "--", "sh", "-c", "echo kept > /root/mark"));
        crashAt("gvisor-pause-listener-closed", "pause", "g1");
        assertThat(answers("g1")).isEqualTo("alive");
        assertThat(inspect("g1").path("state").asString()).isEqualTo("RUNNING");
        assertThat(dirOf("g1").resolve("paused")).doesNotExist();
        assertThat(dirOf("g1").resolve(".operation")).doesNotExist();
        // and it can still be paused and resumed with its files
        ok(cli.run("pause", "g1"));
        ok(cli.run("resume", "g1"));
        assertThat(ok(cli.run("exec", "g1", "--", "cat", "/root/mark")).out()).isEqualTo("kept\n");
        ok(cli.run("rm", "-f", "g1"));
    }

    /**
     * gVisor: a fork cut short after its checkpoint, the source still frozen ({@code runsc
     * pause}) and its agent's socket closed. Before, the source stayed frozen for good.
     */
    @Test
    void aGvisorForkCutShortLeavesItsSourceAnswering() throws Exception {
        ok(gvisor.run("run", "-d", "--name", "g2"));
        crashAt("gvisor-fork-saved", "fork", "g2");
        assertThat(answers("g2")).isEqualTo("alive");
        assertThat(inspect("g2").path("state").asString()).isEqualTo("RUNNING");
        assertThat(ok(cli.run("ps", "-a", "-q")).out().lines().toList()).doesNotContain("g2-1");
        assertThat(children(dirs.data().resolve("forks")))
                .as("the dead fork's checkpoint, swept when the next daemon started")
                .isEmpty();
        ok(cli.run("rm", "-f", "g2"));
    }

    /**
     * A pause that has answered is on disk. Its saved state (a microVM's {@code paused.state}, a
     * gVisor checkpoint) is the only copy of the sandbox's memory once its VMM or Sentry has
     * ended, and the sandbox's disk holds what its files last became; the kernel counts no page
     * of either still to write ({@code cachestat}), so a host crash right after keeps a sandbox
     * that resumes with its processes and files. Before, the saved state waited in the page
     * cache for writeback (up to 30 s) under a record saying paused, and so did a gVisor
     * sandbox's disk.
     */
    @Test
    void aMicrovmPauseIsOnDiskWhenItAnswers() throws Exception {
        pauseIsOnDiskWhenItAnswers(cli, "m3", "paused.state", "layer.ext4");
    }

    @Test
    void aGvisorPauseIsOnDiskWhenItAnswers() throws Exception {
        pauseIsOnDiskWhenItAnswers(gvisor, "g3", "paused", "disk.ext4");
    }

    /** Pauses a new sandbox of {@code runtime} and checks that {@code saved} (files, or directories of files) are written out. */
    private void pauseIsOnDiskWhenItAnswers(Cli runtime, String name, String... saved) throws Exception {
        ok(runtime.run("run", "-d", "--name", name));
        ok(cli.run("exec", name, "--", "sh", "-c", "head -c 4000000 /dev/urandom > /root/work"));
        ok(cli.run("pause", name));
        for (String part : saved) {
            List<Path> files;
            try (Stream<Path> walk = Files.walk(dirOf(name))) {
                files = walk.filter(p -> p.toString().contains("/" + part))
                        .filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))
                        .toList();
            }
            assertThat(files).as(part).isNotEmpty();
            for (Path f : files) {
                assertThat(PageCache.unwritten(f))
                        .as("pages of %s not on disk", f)
                        .isZero();
            }
        }
        ok(cli.run("resume", name));
        assertThat(ok(cli.run("exec", name, "--", "sh", "-c", "wc -c < /root/work"))
                        .out())
                .isEqualTo("4000000\n");
        ok(cli.run("rm", "-f", name));
    }

    private static boolean awaitGone(long pid) {
        return ProcessHandle.of(pid)
                .map(p -> p.onExit().completeOnTimeout(p, 30, TimeUnit.SECONDS).join())
                .map(p -> !p.isAlive())
                .orElse(true);
    }

    private static void assertOwnerOnly(Path dir, String... files) {
        for (String f : files) {
            assertThat(mode(dir.resolve(f))).as(f).isEqualTo("rw-------");
        }
        assertThat(mode(dir)).isEqualTo("rwx------");
    }

    private static String mode(Path p) {
        try {
            return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static List<Path> children(Path dir) {
        return HostFiles.children(dir);
    }
}
