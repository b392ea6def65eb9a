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
 * modes, owners, the airlock user and, in the microVM, the file capability at work.
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
    void runsInAMicrovmSandboxWithItsFileCapability() {
        Cli.Result r = cli.run("run", "--rm", "--image", image, "--", "sh", "-c", CHECK);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().strip()).isEqualTo(EXPECTED);
        // run by uid 1000, the capability binary gets cap_net_raw (bit 13) permitted from its xattr
        Cli.Result caps = cli.run(
                "run",
                "--rm",
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
