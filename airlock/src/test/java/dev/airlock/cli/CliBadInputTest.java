package dev.airlock.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every user mistake gets one clear line on stderr and a non-zero exit, never a stack trace,
 * and leaves nothing half-created behind.
 */
class CliBadInputTest {
    private static AirlockDirs dirs;
    private static Cli cli;

    @BeforeAll
    static void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("cli-bad-input");
        cli = new Cli(dirs);
    }

    @AfterAll
    static void tearDown() {
        cli.run("rm", "-f", "dup");
        TestHost.cleanUp(dirs);
    }

    private static void assertCleanError(Cli.Result r, int exit, String message) {
        assertThat(r.exit()).as(r.err()).isEqualTo(exit);
        assertThat(r.err()).contains(message).doesNotContain("Exception").doesNotContain("\tat ");
    }

    private static long sandboxDirs() throws Exception {
        Path root = dirs.sandboxes();
        if (!Files.isDirectory(root)) {
            return 0;
        }
        try (var s = Files.list(root)) {
            return s.filter(Files::isDirectory).count();
        }
    }

    @Test
    void unknownSandbox() {
        assertCleanError(cli.run("exec", "nope", "--", "true"), 125, "no such sandbox 'nope'");
        assertCleanError(cli.run("stop", "nope"), 125, "no such sandbox 'nope'");
        assertCleanError(cli.run("rm", "nope"), 125, "no such sandbox 'nope'");
    }

    @Test
    void unknownImageCreatesNothing() throws Exception {
        long before = sandboxDirs();
        assertCleanError(cli.run("create", "--image", "nosuchimage"), 125, "unknown image 'nosuchimage'");
        assertThat(sandboxDirs()).isEqualTo(before);
    }

    @Test
    void impossibleResourcesCreateNothing() throws Exception {
        long before = sandboxDirs();
        assertCleanError(cli.run("create", "--cpus", "999"), 125, "impossible --cpus 999");
        assertCleanError(cli.run("create", "--memory", "64t"), 125, "impossible --memory");
        assertCleanError(cli.run("create", "--memory", "lots"), 125, "invalid size 'lots'");
        assertCleanError(cli.run("create", "--disk", "1m"), 125, "impossible --disk");
        assertCleanError(cli.run("run", "--rm", "--timeout", "soon", "--", "true"), 125, "invalid duration 'soon'");
        assertThat(sandboxDirs()).isEqualTo(before);
    }

    @Test
    void duplicateNameIsRefusedAndTheFirstIsKept() {
        Cli.Result first = cli.run("create", "--name", "dup");
        assertThat(first.exit()).as(first.err()).isZero();
        assertCleanError(cli.run("create", "--name", "dup"), 125, "a sandbox named 'dup' already exists");
        Cli.Result ps = cli.run("ps", "-a", "-q");
        assertThat(ps.out().lines().filter(l -> l.equals("dup"))).hasSize(1);
        assertCleanError(cli.run("create", "--name", "bad name!"), 125, "invalid sandbox name");
    }

    @Test
    void snapshotCommandsOnTheWrongSandboxSayWhy() {
        assertCleanError(cli.run("pause", "nope"), 125, "no such sandbox 'nope'");
        assertCleanError(cli.run("fork", "nope"), 125, "no such sandbox 'nope'");
        Cli.Result created = cli.run("create", "--name", "idle");
        assertThat(created.exit()).as(created.err()).isZero();
        assertCleanError(cli.run("pause", "idle"), 125, "only a running sandbox can be paused");
        assertCleanError(cli.run("resume", "idle"), 125, "not paused");
        assertCleanError(cli.run("fork", "idle", "-n", "2"), 125, "only a running sandbox can be forked");
        assertCleanError(cli.run("fork", "idle", "-n", "0"), 125, "must be 1 to 64");
        assertCleanError(cli.run("fork", "idle", "-n", "2", "--name", "x"), 125, "2 clones asked for but 1 names");
        Cli.Result ps = cli.run("ps", "-a", "-q");
        assertThat(ps.out().lines()).doesNotContain("idle-1", "idle-2");
        cli.run("rm", "-f", "idle");
    }

    @Test
    void commandNotFoundInTheGuestExits127() {
        Cli.Result r = cli.run("run", "--rm", "--", "no-such-command-xyz");
        assertThat(r.exit()).as(r.err()).isEqualTo(127);
        assertThat(r.err()).contains("no-such-command-xyz").doesNotContain("Exception");
    }

    @Test
    void missingCommandAndUsageErrors() {
        assertCleanError(cli.run("run", "--rm"), 125, "no command given");
        Cli.Result usage = cli.run("run", "--no-such-flag");
        assertThat(usage.exit()).isEqualTo(2);
        assertThat(usage.err()).contains("Unknown option: '--no-such-flag'");
    }

    @Test
    void errorsThatOnceEndedInAStackTraceAreSaidInWords() throws Exception {
        Cli ct = cli.inRuntime("container");
        Cli.Result started = ct.run("run", "-d", "--name", "dev");
        assertThat(started.exit()).as(started.err()).isZero();
        try {
            // a reference is checked before it goes into a URL: this once force-removed 'dev'
            assertCleanError(cli.run("rm", "dev?force=true"), 125, "is not a sandbox name or id");
            assertThat(cli.run("ps", "-q").out().lines()).contains("dev");
            // a copy into a host directory that does not exist
            assertCleanError(
                    cli.run("cp", "dev:/etc/hostname", "/nonexistent-airlock-dir/x"),
                    125,
                    "no such file or directory: /nonexistent-airlock-dir/x");
            // a diff of a sandbox without a workspace: this once printed the daemon's HTML error page
            Cli.Result diff = cli.run("diff", "dev");
            assertCleanError(diff, 125, "sandbox 'dev' has no workspace; create one with --workspace DIR");
            assertThat(diff.err()).doesNotContain("<html>").doesNotContain("500");
            // an agent credentials file that cannot be read
            assertCleanError(
                    cli.run(
                            "run",
                            "--rm",
                            "--workspace",
                            dirs.data().toString(),
                            "--agent-env-file",
                            "/nonexistent-airlock-dir/env",
                            "--",
                            "true"),
                    125,
                    "--agent-env-file /nonexistent-airlock-dir/env: cannot read it");
            // an exec whose sandbox is killed under it
            ProcessBuilder pb =
                    new ProcessBuilder(cli.argv("exec", "dev", "--", "sh", "-c", "echo started; sleep 600"));
            cli.environment(pb.environment());
            Process exec = pb.start();
            try (var out = new java.io.BufferedReader(
                    new java.io.InputStreamReader(exec.getInputStream(), java.nio.charset.StandardCharsets.UTF_8))) {
                assertThat(out.readLine()).isEqualTo("started");
                assertThat(cli.run("kill", "dev").exit()).isZero();
                assertThat(exec.waitFor(60, java.util.concurrent.TimeUnit.SECONDS))
                        .isTrue();
            }
            String err = new String(exec.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            assertThat(exec.exitValue()).as(err).isEqualTo(125);
            assertThat(err).contains("the session with the sandbox ended").doesNotContain("\tat ");
        } finally {
            cli.run("rm", "-f", "dev");
        }
    }

    @Test
    void aRuntimeDirectoryAnotherUserMadeFirstIsRefused() throws Exception {
        // Another local user who makes the runtime directory first could put their own socket in
        // it (and receive secrets); it must be ours and closed to others, or nothing is started.
        Path theirs = Files.createTempDirectory(Path.of("/tmp"), "alr-theirs");
        try {
            Files.setAttribute(theirs, "unix:uid", 65534);
            Files.setPosixFilePermissions(theirs, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            Cli.Result r = cli.run(Map.of("AIRLOCK_RUNTIME_DIR", theirs.toString()), new byte[0], "ps");
            assertCleanError(r, 125, "belongs to uid 65534");
            try (var left = Files.list(theirs)) {
                assertThat(left.toList()).as("nothing was made in it").isEmpty();
            }
        } finally {
            dev.airlock.host.HostFiles.deleteTree(theirs);
        }
    }

    @Test
    void missingJdkIsExplainedByTheLauncher() throws Exception {
        ProcessBuilder pb =
                new ProcessBuilder(dirs.home().resolve("bin/airlock").toString(), "--version");
        Map<String, String> env = pb.environment();
        env.put("JAVA_HOME", "/nonexistent-jdk");
        env.put("AIRLOCK_JVM_DIR", "/nonexistent-jvm-dir");
        Process p = pb.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).isEqualTo(2);
        assertThat(out).contains("no JDK 25 or newer found").contains("JAVA_HOME");
    }
}
