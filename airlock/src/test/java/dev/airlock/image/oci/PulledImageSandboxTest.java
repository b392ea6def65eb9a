package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A pulled image boots as every Airlock image does: the test pushes its image to a loopback
 * registry, pulls it with the CLI into the host's shared store, and runs commands in it in a
 * container sandbox and in a microVM sandbox ({@code airlock run --image NAME}), checking files,
 * modes, owners, the airlock user and, in the microVM, the file capability at work. The image's
 * config applies in both: its Env, WorkingDir and User are the sandbox's defaults, and
 * {@code run IMAGE} with no command runs its entrypoint and cmd (Docker's rules for arguments,
 * {@code --entrypoint} and {@code -u}).
 */
class PulledImageSandboxTest {
    private static Path work;
    private static TestRegistry registry;
    private static AirlockDirs dirs;
    private static Cli cli;
    private static String image;

    /** What the layers say, as busybox stat prints it: mode, uid, gid, links, then readlink and contents. */
    private static final String CHECK = "stat -c '%a %u %g %h %n' /tools/suid /tools/owned /tools/hardlink /shared;"
            + " readlink /tools/link; cat /tools/link; ls /opq; ls /data; test -e /gone || echo no-gone;"
            + " cat /extra/third; id airlock";

    private static final String EXPECTED = String.join(
            "\n",
            "4755 0 0 1 /tools/suid",
            "640 1234 5678 1 /tools/owned",
            "644 0 0 2 /tools/hardlink",
            "1777 0 0 2 /shared",
            "../data/keep",
            "kept",
            "fresh",
            "keep",
            "no-gone",
            "third layer",
            "uid=1000(airlock) gid=1000(airlock) groups=1000(airlock)");

    @BeforeAll
    static void setUp() throws Exception {
        TestHost.ready();
        work = Files.createTempDirectory("airlock-pulled-sandbox");
        registry = TestRegistry.start(work, work.resolve("registry"), "");
        Path layout = TestImages.buildLayout(work, "v1");
        TestImages.push(layout, "v1", registry.host() + "/test/sandbox:v1");
        dirs = TestHost.isolated("pulled-image");
        cli = new Cli(dirs);
        image = registry.host() + "/test/sandbox:v1";
        Cli.Result pull = cli.run("image", "pull", "--quiet", image);
        assertThat(pull.exit()).as(pull.err()).isZero();
    }

    @AfterAll
    static void tearDown() {
        cli.run("image", "rm", image);
        TestHost.cleanUp(dirs);
        registry.close();
        HostFiles.deleteTree(work);
    }

    /** The config's env, workdir and user, as a command that names none of them sees them. */
    private static final String DEFAULTS = "echo \"$GREETING\"; pwd; id -u; echo $PATH";

    @Test
    void theImagesConfigAppliesInAContainerSandbox() {
        configApplies("container");
    }

    @Test
    void theImagesConfigAppliesInAMicrovmSandbox() {
        configApplies("microvm");
    }

    @Test
    void theImagesConfigAppliesInAGvisorSandbox() {
        configApplies("gvisor");
    }

    private static void configApplies(String runtime) {
        // no command: the entrypoint and cmd (/bin/sh -c 'echo started'), as the image's user, in its workdir
        Cli.Result started = cli.run("run", "--rm", "--runtime", runtime, "--image", image);
        assertThat(started.exit()).as(started.err()).isZero();
        assertThat(started.out()).isEqualTo("started\n");
        // Docker's form: arguments after the image replace the cmd and go to the entrypoint
        Cli.Result docker = cli.run("run", "--rm", "--runtime", runtime, image, "-c", DEFAULTS);
        assertThat(docker.exit()).as(docker.err()).isZero();
        assertThat(docker.out()).isEqualTo("hello from the image\n/data\n1000\n/usr/local/bin:/usr/bin:/bin\n");
        // a command after -- runs as given, still with the image's env, workdir and user; -u and -e override
        Cli.Result given = cli.run(
                "run",
                "--rm",
                "--runtime",
                runtime,
                "-u",
                "0",
                "-e",
                "GREETING=mine",
                "--image",
                image,
                "--",
                "sh",
                "-c",
                DEFAULTS);
        assertThat(given.exit()).as(given.err()).isZero();
        assertThat(given.out()).isEqualTo("mine\n/data\n0\n/usr/local/bin:/usr/bin:/bin\n");
        // --entrypoint replaces the entrypoint and drops the image's cmd
        Cli.Result entry =
                cli.run("run", "--rm", "--runtime", runtime, "--entrypoint", "/bin/echo", image, "one", "two");
        assertThat(entry.exit()).as(entry.err()).isZero();
        assertThat(entry.out()).isEqualTo("one two\n");
        // --entrypoint '' clears it (Docker's rule): the arguments alone are the command; none is an error in words
        Cli.Result cleared = cli.run("run", "--rm", "--runtime", runtime, "--entrypoint", "", image, "echo", "cleared");
        assertThat(cleared.exit()).as(cleared.err()).isZero();
        assertThat(cleared.out()).isEqualTo("cleared\n");
        Cli.Result nothing = cli.run("run", "--rm", "--runtime", runtime, "--entrypoint", "", image);
        assertThat(nothing.exit()).isNotZero();
        assertThat(nothing.err()).contains("no command given").doesNotContain("Exception");
        // a sandbox keeps its defaults for later execs; inspect shows them
        Cli.Result created = cli.run("create", "--runtime", runtime, "--image", image);
        assertThat(created.exit()).as(created.err()).isZero();
        String name = created.out().strip();
        try {
            assertThat(cli.run("start", name).exit()).isZero();
            Cli.Result exec = cli.run("exec", name, "--", "sh", "-c", DEFAULTS);
            assertThat(exec.out()).as(exec.err()).startsWith("hello from the image\n/data\n1000\n");
            Cli.Result inspect = cli.run("inspect", name);
            assertThat(inspect.out()).contains("\"user\" : \"1000\"").contains("\"/bin/sh\", \"-c\", \"echo started\"");
        } finally {
            cli.run("rm", "-f", name);
        }
    }

    @Test
    void runsInAContainerSandbox() {
        Cli.Result r = cli.run("run", "--rm", "--runtime", "container", "--image", image, "--", "sh", "-c", CHECK);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().strip()).isEqualTo(EXPECTED);
        Cli.Result asUser = cli.run(
                "run",
                "--rm",
                "--runtime",
                "container",
                "-u",
                "airlock",
                "--image",
                image,
                "--",
                "sh",
                "-c",
                "id -u; echo $HOME; touch /home/airlock/mine && echo writable");
        assertThat(asUser.exit()).as(asUser.err()).isZero();
        assertThat(asUser.out()).isEqualTo("1000\n/home/airlock\nwritable\n");
    }

    @Test
    void runsInAGvisorSandbox() {
        // Files, modes and owners as in the other runtimes; gVisor does not apply file capabilities.
        Cli.Result r = cli.run("run", "--rm", "--runtime", "gvisor", "--image", image, "--", "sh", "-c", CHECK);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().strip()).isEqualTo(EXPECTED);
    }

    @Test
    void runsInAMicrovmSandboxWithItsFileCapability() {
        // The runtime named: the host's default may be another (gVisor where KVM runs no guest).
        Cli.Result r = cli.run("run", "--rm", "--runtime", "microvm", "--image", image, "--", "sh", "-c", CHECK);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().strip()).isEqualTo(EXPECTED);
        // run by uid 1000, the capability binary gets cap_net_raw (bit 13) permitted from its xattr
        Cli.Result caps = cli.run(
                "run",
                "--rm",
                "--runtime",
                "microvm",
                "-u",
                "airlock",
                "--image",
                image,
                "--",
                "/tools/cap/busybox",
                "grep",
                "CapPrm",
                "/proc/self/status");
        assertThat(caps.exit()).as(caps.err()).isZero();
        assertThat(caps.out().strip()).isEqualTo("CapPrm:\t0000000000002000");
    }
}
