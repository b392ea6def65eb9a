package dev.airlock.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Container sandboxes whose root turns hostile from inside, against the real CLI, daemon and
 * runtime: it points its agent socket at another host socket, and floods the log the runtime
 * writes. Before: the daemon, root, connected to whatever socket the link named; the log grew
 * as long as the guest wrote.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HostileContainerTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private AirlockDirs dirs;
    private Cli cli;
    private Path scratch;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("hostile-container");
        cli = new Cli(dirs).inRuntime("container");
        scratch = Files.createTempDirectory(Path.of("/tmp"), "alh");
    }

    @AfterAll
    void tearDown() {
        for (String name : cli.run("ps", "-a", "-q").out().lines().toList()) {
            cli.run("rm", "-f", name);
        }
        TestHost.cleanUp(dirs);
        HostFiles.deleteTree(scratch);
    }

    private static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as(r.err()).isZero();
        return r;
    }

    @Test
    void anAgentSocketPointedAtAnotherHostSocketIsNeverConnectedTo() throws Exception {
        // Another host service's socket, which the container cannot see but can name.
        Path decoy = scratch.resolve("decoy.sock");
        try (ServerSocketChannel other = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            other.bind(UnixDomainSocketAddress.of(decoy));
            other.configureBlocking(false);
            ok(cli.run("run", "-d", "--name", "redirect"));
            ok(cli.run(
                    "exec",
                    "redirect",
                    "--",
                    "sh",
                    "-c",
                    "rm /run/airlock/agent.sock && ln -s " + decoy + " /run/airlock/agent.sock"));
            // Stopping connects to the agent afresh (to ask it to shut down): the link is refused,
            // so the stop kills the container instead.
            Cli.Result stop = ok(cli.run("stop", "redirect"));
            assertThat(other.accept())
                    .as("a connection the daemon made to the other socket")
                    .isNull();
            assertThat(stop.out() + stop.err()).doesNotContain("Exception");
            assertThat(inspect("redirect").path("state").asString()).isEqualTo("STOPPED");
            assertThat(Files.readString(dirs.data().resolve("airlockd.log"))).contains("is not a socket but a symlink");
        }
        // Started again, the sandbox has its own socket and works.
        ok(cli.run("start", "redirect"));
        assertThat(ok(cli.run("exec", "redirect", "--", "echo", "back")).out()).isEqualTo("back\n");
    }

    @Test
    void aFloodedContainerLogStaysCapped() throws Exception {
        ok(cli.run("run", "-d", "--name", "flood"));
        // 300 MiB into the runtime's log, once appended and once through a descriptor of the
        // guest's own (no O_APPEND: it carries on at its own offset after a truncation).
        ok(cli.run(
                "exec",
                "flood",
                "--",
                "sh",
                "-c",
                "head -c 150M /dev/zero | tr '\\0' x >> /proc/1/fd/1 && head -c 150M /dev/zero | tr '\\0' y"
                        + " > /proc/1/fd/2 && echo last line >> /proc/1/fd/2"));
        Path log = containerLog("flood");
        long used = allocated(log);
        assertThat(used).as("disk the log takes after a 300 MiB flood").isLessThan(48L << 20);
        String shown = ok(cli.run("logs", "flood")).out();
        assertThat(shown).endsWith("last line\n");
        assertThat(shown.length()).isLessThanOrEqualTo(4 << 20);
    }

    /**
     * The host directory a sandbox makes its agent socket in is mounted read-write into it (at
     * /run/airlock): on the host's own file system it was a way past the sandbox's disk limit,
     * into the host's disk (or, with the runtime directory on tmpfs, its memory). Before: the 64
     * MiB below landed whole in the host's runtime directory, and as much as the host had.
     */
    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void theAgentSocketDirectoryHoldsNoGuestFiles(String runtime) throws Exception {
        Cli in = new Cli(dirs).inRuntime(runtime);
        String name = "sockdir-" + runtime;
        ok(in.run("run", "-d", "--name", name));
        Path socketDir =
                dirs.runtime().resolve(inspect(name).path("id").asString().substring(0, 16));
        Cli.Result fill =
                in.run("exec", name, "--", "sh", "-c", "head -c 64M /dev/zero > /run/airlock/fill && echo written");
        assertThat(fill.out()).as(fill.err()).doesNotContain("written");
        assertThat(fill.out() + fill.err()).contains("No space left on device");
        assertThat(allocated(socketDir)).as("host disk under " + socketDir).isLessThan(1L << 20);
        // The agent's own socket is unaffected, before and after a stop and start.
        assertThat(ok(in.run("exec", name, "--", "echo", "back")).out()).isEqualTo("back\n");
        ok(in.run("stop", name));
        ok(in.run("start", name));
        assertThat(ok(in.run("exec", name, "--", "ls", "/run/airlock")).out()).isEqualTo("agent.sock\n");
        ok(in.run("rm", "-f", name));
        assertThat(Mounts.under(socketDir)).as("mounts left at " + socketDir).isEmpty();
    }

    /**
     * A container that fails to start is reported with the end of its log, which its root
     * writes: the log's size is the guest's to set (a trim punches holes and keeps the size), and
     * its bytes reach the user's terminal in the error. Before: the host read the whole file into
     * one string (here 3 GiB: OutOfMemoryError in the daemon) and passed escape sequences on raw.
     */
    @Test
    void aStartFailureShowsABoundedEscapedEndOfTheGuestsLog() throws Exception {
        ok(cli.run("run", "-d", "--name", "logtail"));
        ok(cli.run(
                "exec",
                "logtail",
                "--",
                "sh",
                "-c",
                String.join(
                        " && ",
                        "dd if=/dev/zero of=/proc/1/fd/2 bs=1 count=1 seek=3G conv=notrunc 2>/dev/null",
                        "printf 'boom \\033]0;owned\\007\\033[2J' >> /proc/1/fd/2")));
        Path log = containerLog("logtail");
        assertThat(Files.size(log)).isGreaterThan(3L << 30);
        // The message the start's failure paths build (the agent's timeout; the runtime ending).
        Container c = new Container(
                "airlock-logtail",
                java.util.Objects.requireNonNull(log.getParent()),
                scratch,
                log.resolveSibling("agent.sock"),
                new ContainerCgroup("/"));
        String tail = OciContainers.logTail(c);
        assertThat(tail).contains("boom ").doesNotContain("\u001b").doesNotContain("\u0007");
        assertThat(tail.length()).isLessThanOrEqualTo(8192);
    }

    private JsonNode inspect(String name) {
        return JSON.readTree(ok(cli.run("inspect", name)).out());
    }

    private Path containerLog(String name) {
        return dirs.sandboxes().resolve(inspect(name).path("id").asString()).resolve("container/container.log");
    }

    private static long allocated(Path file) {
        if (!Files.exists(file)) {
            return 0;
        }
        HostCommand.Result r = HostCommand.run(List.of("du", "-s", "-B1", file.toString()), null, null);
        assertThat(r.ok()).as(r.output()).isTrue();
        return Long.parseLong(r.output().strip().split("\\s+")[0]);
    }
}
