package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Mistakes in network flags: one clear line, exit 125, and no sandbox left behind. */
class NetworkBadInputTest {
    private static AirlockDirs dirs;
    private static Cli cli;

    @BeforeAll
    static void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("net-bad-input");
        cli = new Cli(dirs);
    }

    @AfterAll
    static void tearDown() {
        TestHost.cleanUp(dirs);
    }

    private static void refused(String message, String... args) throws Exception {
        Cli.Result r = cli.run(args);
        assertThat(r.exit()).as(r.err()).isEqualTo(125);
        assertThat(r.err()).contains(message).doesNotContain("Exception").doesNotContain("\tat ");
        if (Files.isDirectory(dirs.sandboxes())) {
            try (var s = Files.list(dirs.sandboxes())) {
                assertThat(s.filter(Files::isDirectory).count()).isZero();
            }
        }
    }

    @Test
    void badModesRulesPinsAndPorts() throws Exception {
        refused("unknown network mode 'bridge': use none, proxy or nat", "create", "--network", "bridge");
        refused(
                "--allow-host '*.wild.test' cannot be enforced with --network nat",
                "create",
                "--network",
                "nat",
                "--allow-host",
                "*.wild.test");
        refused("--secret needs --network proxy", "create", "--network", "nat", "--secret", "PATH");
        refused("--add-host 'api.test' is not NAME:IP", "create", "--allow-host", "api.test", "--add-host", "api.test");
        refused("is not a host name", "create", "--allow-host", "bad host!");
        refused("need --network proxy", "create", "--network", "none", "--allow-host", "api.test");
        refused("port mapping '99999:80' is not [HOSTIP:]HOSTPORT:GUESTPORT", "create", "-p", "99999:80");
    }

    @Test
    void secretsNeedAValueAndTheProxy() throws Exception {
        refused(
                "the host variable AIRLOCK_TEST_UNSET_SECRET is not set",
                "create",
                "--allow-host",
                "api.test",
                "--secret",
                "AIRLOCK_TEST_UNSET_SECRET@api.test");
        refused("--secret needs --network proxy", "create", "--secret", "PATH");
        refused(
                "--inference '" + "ftp://x" + "' must be an http:// or https:// URL",
                "create",
                "--inference",
                "ftp://x");
    }

    @Test
    void networkCommandsOnUnknownSandboxes() throws Exception {
        refused("no such sandbox 'nope'", "network", "show", "nope");
        refused("no such sandbox 'nope'", "port", "add", "nope", "8080:80");
        refused("no such sandbox 'nope'", "logs", "--egress", "nope");
    }
}
