package dev.airlock.build;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code airlock image build} of an airlock.toml {@code [image]} recipe: its {@code run} commands
 * are RUN steps in a sandbox (gVisor, this host's default runtime), no longer commands as root
 * in a chroot on the host. A recipe whose commands try to read a host-only file, write a file on
 * the host (through {@code /proc/1/root} and directly) and reach a listener on the host's
 * loopback gets none of them; the image still holds what the commands did inside. A second
 * build runs nothing. And {@code [image].dockerfile} builds the repository's Dockerfile.
 */
class ProjectImageBuildTest {
    private static AirlockDirs dirs;
    private static Cli cli;
    private static Path work;

    @BeforeAll
    static void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("project-image");
        cli = new Cli(dirs);
        work = Files.createTempDirectory("airlock-project-image");
    }

    @AfterAll
    static void tearDown() {
        cli.run("image", "rm", "recipe-test");
        cli.run("image", "rm", "recipe-dockerfile");
        TestHost.cleanUp(dirs);
        HostFiles.deleteTree(work);
    }

    @Test
    void recipeCommandsRunInASandboxAndCannotTouchTheHost() throws Exception {
        Path secret = Files.writeString(work.resolve("host-only.txt"), "host secret 7f3a\n");
        Path marker = work.resolve("written-by-recipe");
        Path repo = Files.createDirectories(work.resolve("repo"));
        try (ServerSocketChannel listener = ServerSocketChannel.open()) {
            listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = ((InetSocketAddress) listener.getLocalAddress()).getPort();
            Files.writeString(
                    repo.resolve("airlock.toml"),
                    "[image]\nname = \"recipe-test\"\nrun = [\n"
                            + "  \"echo made inside > /etc/recipe.txt\",\n"
                            + "  \"cat /proc/1/root" + secret + " " + secret + " > /leak.txt 2>/dev/null || true\",\n"
                            + "  \"echo escaped > /proc/1/root" + marker + " 2>/dev/null || true; echo escaped > "
                            + marker + " 2>/dev/null || true\",\n"
                            + "  \"curl -s -m 5 http://127.0.0.1:" + port + "/ || true\",\n"
                            + "]\n");
            Cli.Result build = cli.run("image", "build", "--runtime", "gvisor", repo.toString());
            assertThat(build.exit()).as(build.err()).isZero();
            assertThat(build.err()).contains("starting a build sandbox").contains("step 5/5: RUN");

            // the build is over: a connection the recipe made would be in the backlog by now
            listener.configureBlocking(false);
            assertThat(listener.accept())
                    .as("a connection from the recipe to the host's loopback")
                    .isNull();
        }
        assertThat(marker).as("a file the recipe wrote on the host").doesNotExist();

        Cli.Result inside = cli.run(
                "run",
                "--rm",
                "--runtime",
                "gvisor",
                "--image",
                "recipe-test",
                "--",
                "sh",
                "-c",
                "cat /etc/recipe.txt; cat /leak.txt; echo end");
        assertThat(inside.exit()).as(inside.err()).isZero();
        assertThat(inside.out()).contains("made inside").contains("end").doesNotContain("host secret");

        Cli.Result again = cli.run("image", "build", "--runtime", "gvisor", repo.toString());
        assertThat(again.exit()).as(again.err()).isZero();
        assertThat(again.err()).doesNotContain("starting a build sandbox").contains("step 5/5: RUN");
        assertThat(again.err().split("\\(cached\\)", -1)).hasSize(5);
    }

    @Test
    void aTomlNamingADockerfileBuildsIt() throws Exception {
        Path repo = Files.createDirectories(work.resolve("repo-dockerfile"));
        Files.createDirectories(repo.resolve("docker"));
        Files.writeString(repo.resolve("notes.txt"), "from the repository\n");
        Files.writeString(
                repo.resolve("docker/dev.Dockerfile"),
                "FROM base\nCOPY --chmod=0640 notes.txt /notes.txt\nENV FROM_DOCKERFILE=yes\n");
        Files.writeString(
                repo.resolve("airlock.toml"),
                "[image]\nname = \"recipe-dockerfile\"\ndockerfile = \"docker/dev.Dockerfile\"\n");
        Cli.Result build = cli.run("image", "build", "--runtime", "gvisor", repo.toString());
        assertThat(build.exit()).as(build.err()).isZero();
        Cli.Result inside = cli.run(
                "run",
                "--rm",
                "--runtime",
                "gvisor",
                "--image",
                "recipe-dockerfile",
                "--",
                "sh",
                "-c",
                "cat /notes.txt; stat -c %a /notes.txt; echo $FROM_DOCKERFILE");
        assertThat(inside.exit()).as(inside.err()).isZero();
        assertThat(inside.out()).contains("from the repository").contains("640").contains("yes");

        Files.writeString(repo.resolve("airlock.toml"), "[image]\ndockerfile = \"../repo/airlock.toml\"\n");
        Cli.Result escaping = cli.run("image", "build", repo.toString());
        assertThat(escaping.exit()).isNotZero();
        assertThat(escaping.err()).contains("leads outside the repository").doesNotContain("Exception");
    }
}
