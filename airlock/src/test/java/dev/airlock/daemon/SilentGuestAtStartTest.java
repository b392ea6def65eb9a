package dev.airlock.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.json.JsonMapper;

/**
 * A guest that never answers holds up only itself when a daemon starts: the daemon serves first
 * and re-attaches each running sandbox on its own thread. The silent guest is a real container
 * whose agent the test stops with SIGSTOP from the host, the stand-in for a guest that accepts the
 * connection and never says hello (guest root could do the same by replacing its agent). Before,
 * the daemon re-attached every sandbox before it served: every command waited for the silent one.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SilentGuestAtStartTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private AirlockDirs dirs;
    private Cli cli;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("silent-guest");
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
    void aSilentGuestDelaysNeitherTheDaemonNorOtherSandboxes() throws Exception {
        ok(cli.run("run", "-d", "--name", "silent"));
        ok(cli.run("run", "-d", "--name", "other"));
        long agent = JSON.readTree(ok(cli.run("inspect", "silent")).out())
                .path("pid")
                .asLong();
        assertThat(Files.readString(Path.of("/proc/" + agent + "/cmdline"))).contains("airlock-init");
        cli.killDaemon();
        signal("STOP", agent);
        try {
            // A new daemon starts with the first command, finds both sandboxes running, and must
            // answer while its attempt at the silent one still waits for a hello (30 s).
            Cli.Result ps = ok(cli.run("ps"));
            String log = Files.readString(dirs.data().resolve("airlockd.log"));
            assertThat(ps.out()).contains("silent", "other");
            assertThat(log.substring(log.lastIndexOf("airlockd: serving")))
                    .as("the daemon's log when ps had its answer")
                    .doesNotContain("sandbox silent could not be re-attached");
            assertThat(ok(cli.run("exec", "other", "--", "echo", "fine")).out()).isEqualTo("fine\n");
        } finally {
            signal("CONT", agent);
        }
    }

    private static void signal(String name, long pid) {
        HostCommand.Result r = HostCommand.run(List.of("kill", "-" + name, Long.toString(pid)), null, null);
        assertThat(r.ok()).as(r.output()).isTrue();
    }
}
