package dev.airlock.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Container root is not host root: against the real CLI, daemon, crun and kernel, what root in a
 * container sandbox makes on the host belongs to the container ids setup reserved ({@link
 * ContainerIds}), and so does the user-mode NAT beside it. Before: no user namespace, so a file
 * root made was host root's, a setuid binary it planted in a directory the host shares with it
 * ran as host root, and slirp4netns ran as host root.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ContainerUserNamespaceTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private AirlockDirs dirs;
    private Cli cli;
    private ContainerIds ids;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        ids = ContainerIds.forHost()
                .orElseThrow(() -> new AssertionError(
                        "no " + ContainerIds.USER + " range in /etc/subuid: run scripts/install-packages.sh"));
        dirs = TestHost.isolated("container-userns");
        cli = new Cli(dirs).inRuntime("container");
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

    @Test
    void aFileRootMakesInTheContainerIsTheMappedUidsOnTheHost() throws Exception {
        ok(cli.run("run", "-d", "--name", "owner"));
        assertThat(ok(cli.run("exec", "owner", "--", "id", "-u")).out()).isEqualTo("0\n");
        // root inside still owns the image's files (an idmapped view of the image, not a copy)
        ok(cli.run("exec", "owner", "--", "sh", "-c", "echo x > /etc/made-by-root && apt-get --version >/dev/null"));
        Path made = LayerDisk.upper(sandboxDir("owner").resolve("container")).resolve("etc/made-by-root");
        assertThat(owner(made)).isEqualTo(ids.uid()).isNotZero();
        assertThat(group(made)).isEqualTo(ids.gid());
        // a file the image has as root's, changed in the container: copied up as the mapped uid's
        ok(cli.run("exec", "owner", "--", "sh", "-c", "echo changed >> /etc/debian_version"));
        assertThat(owner(LayerDisk.upper(sandboxDir("owner").resolve("container"))
                        .resolve("etc/debian_version")))
                .isEqualTo(ids.uid());
        // the image itself is untouched: still root's where it is mounted for everyone
        assertThat(ok(cli.run("exec", "owner", "--", "stat", "-c", "%u", "/etc/passwd"))
                        .out())
                .isEqualTo("0\n");
    }

    @Test
    void aSetuidBinaryPlantedInASharedDirectoryIsNotRootOnTheHost() throws Exception {
        ok(cli.run("run", "-d", "--name", "plant"));
        // The agent's socket directory is a host directory (its own tmpfs) the container writes to.
        ok(cli.run(
                "exec",
                "plant",
                "--",
                "sh",
                "-c",
                "cp /usr/bin/id /run/airlock/planted && chown 0:0 /run/airlock/planted && chmod 6755"
                        + " /run/airlock/planted"));
        Path planted = dirs.runtime().resolve(id("plant").substring(0, 16)).resolve("planted");
        assertThat(owner(planted)).isEqualTo(ids.uid());
        // Run on the host (by root, who would keep root through it before): the directory is a
        // noexec tmpfs, so it does not run at all (and would run as its owner, the mapped uid).
        HostCommand.Result r = HostCommand.run(List.of(planted.toString(), "-u"), null, null);
        assertThat(r.ok()).as(r.output()).isFalse();
        assertThat(r.output()).contains("Permission denied");
    }

    @Test
    void natRunsAsTheContainersUnprivilegedUid() throws Exception {
        ok(cli.run("run", "-d", "--name", "nat", "--network", "nat"));
        Path pidFile = sandboxDir("nat").resolve("container").resolve(Slirp4netns.PID_FILE);
        long pid = Long.parseLong(Files.readAllLines(pidFile).getFirst().strip());
        String status = Files.readString(Path.of("/proc", Long.toString(pid), "status"));
        assertThat(status).contains("Name:\tslirp4netns");
        String uids =
                status.lines().filter(l -> l.startsWith("Uid:")).findFirst().orElseThrow();
        // real, effective, saved and file-system uid: all the container root's
        assertThat(uids.split("\\s+"))
                .containsExactly("Uid:", "" + ids.uid(), "" + ids.uid(), "" + ids.uid(), "" + ids.uid());
        // (its capabilities are in the container's user namespace: over the container's network
        // namespace, which that namespace owns, and nothing of the host's)
        // and the sandbox's network still comes up: tap0 with slirp4netns's address
        assertThat(ok(cli.run("exec", "nat", "--", "cat", "/sys/class/net/tap0/operstate"))
                        .out())
                .isNotBlank();
    }

    @Test
    void gvisorsNatRunsAsTheUnprivilegedUidToo() throws Exception {
        Cli gvisor = new Cli(dirs).inRuntime("gvisor");
        ok(gvisor.run("run", "-d", "--name", "gnat", "--network", "nat"));
        Path dir = sandboxDir("gnat").resolve("container");
        long pid = Long.parseLong(
                Files.readAllLines(dir.resolve(Slirp4netns.PID_FILE)).getFirst().strip());
        String status = Files.readString(Path.of("/proc", Long.toString(pid), "status"));
        assertThat(status).contains("Name:\tslirp4netns");
        String uids =
                status.lines().filter(l -> l.startsWith("Uid:")).findFirst().orElseThrow();
        // the network namespace runsc joins belongs to a user namespace of the container ids,
        // where slirp4netns is root: on the host, the unprivileged uid
        assertThat(uids.split("\\s+"))
                .containsExactly("Uid:", "" + ids.uid(), "" + ids.uid(), "" + ids.uid(), "" + ids.uid());
        assertThat(ok(gvisor.run("exec", "gnat", "--", "sh", "-c", "echo up")).out())
                .isEqualTo("up\n");
        ok(gvisor.run("rm", "-f", "gnat"));
        assertThat(dir.resolve(Slirp4netns.USERNS)).doesNotExist();
        assertThat(dir.resolve(Slirp4netns.NETNS)).doesNotExist();
    }

    private String id(String name) {
        return inspect(name).path("id").asString();
    }

    private Path sandboxDir(String name) {
        return dirs.sandboxes().resolve(id(name));
    }

    private JsonNode inspect(String name) {
        return JSON.readTree(ok(cli.run("inspect", name)).out());
    }

    private static int owner(Path p) throws Exception {
        return (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    }

    private static int group(Path p) throws Exception {
        return (Integer) Files.getAttribute(p, "unix:gid", LinkOption.NOFOLLOW_LINKS);
    }
}
