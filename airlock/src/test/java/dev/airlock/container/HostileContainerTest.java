package dev.airlock.container;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Container sandboxes whose root turns hostile from inside, against the real CLI, daemon and
 * runtime: it floods the log the runtime writes. Before: the log grew as long as the guest wrote.
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
        long used = allocated(log) + allocated(log.resolveSibling("container.log.1"));
        assertThat(used)
                .as("disk the log and its previous file take after a 300 MiB flood")
                .isLessThan(48L << 20);
        String shown = ok(cli.run("logs", "flood")).out();
        assertThat(shown).endsWith("last line\n");
        assertThat(shown.length()).isLessThanOrEqualTo(4 << 20);
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
        HostCommand.Result r = HostCommand.run(List.of("du", "-B1", file.toString()), null, null);
        assertThat(r.ok()).as(r.output()).isTrue();
        return Long.parseLong(r.output().strip().split("\\s+")[0]);
    }
}
