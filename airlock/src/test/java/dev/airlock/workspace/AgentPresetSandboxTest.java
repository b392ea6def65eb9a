package dev.airlock.workspace;

import static dev.airlock.workspace.WorkspaceTest.git;
import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import dev.airlock.host.AirlockDirs;
import dev.airlock.net.InterceptionCa;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The claude preset end to end in a container sandbox: {@code run --workspace --agent claude
 * --task}. The agent CLI is a stand-in (a node script in the repository, first on PATH), because
 * the real one comes from the npm registry, which tests must not reach; the preset's allowlist,
 * key-as-secret, command line and task are the real ones. The API host is a loopback HTTPS server
 * pinned with {@code --add-host}, its certificate from a CA the daemon knows only as a host CA.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AgentPresetSandboxTest {
    private static final String REAL_KEY = "sk-ant-test-" + java.util.UUID.randomUUID();
    private AirlockDirs dirs;
    private Cli cli;
    private HttpsServer api;
    private Path tmp;
    private final Map<String, String> apiKeys = new ConcurrentHashMap<>();

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("agent-preset");
        cli = new Cli(dirs).inRuntime("container");
        tmp = Files.createTempDirectory("airlock-agent-preset");
        InterceptionCa testCa = InterceptionCa.generate("Airlock agent preset test CA");
        api = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        api.setHttpsConfigurator(new HttpsConfigurator(testCa.serverContext(List.of("api.anthropic.com"))));
        api.createContext("/", x -> {
            try (InputStream in = x.getRequestBody()) {
                in.readAllBytes();
            }
            apiKeys.put(
                    x.getRequestURI().getPath(),
                    String.valueOf(x.getRequestHeaders().getFirst("x-api-key")));
            byte[] body = "{\"ok\":true}".getBytes(StandardCharsets.UTF_8);
            x.sendResponseHeaders(200, body.length);
            x.getResponseBody().write(body);
            x.close();
        });
        api.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        api.start();
        Files.writeString(tmp.resolve("test-ca.pem"), testCa.certificatePem());
    }

    @AfterAll
    void tearDown() {
        cli.run("rm", "-f", "ag");
        api.stop(0);
        TestHost.cleanUp(dirs);
    }

    @Test
    void theClaudePresetRunsItsTaskWithTheKeyAddedAtTheBoundaryAndItsCommitComesBack() throws Exception {
        Path repo = Files.createDirectories(tmp.resolve("repo"));
        git(tmp, "init", "-q", "-b", "main", repo.toString());
        git(repo, "config", "user.email", "test@example.com");
        git(repo, "config", "user.name", "test");
        Path bin = Files.createDirectories(repo.resolve("bin"));
        try (InputStream in = Objects.requireNonNull(getClass().getResourceAsStream("stand-in-claude.js"))) {
            Files.write(bin.resolve("claude"), in.readAllBytes());
        }
        bin.resolve("claude").toFile().setExecutable(true);
        Files.writeString(repo.resolve("README"), "a project\n");
        git(repo, "add", "-A");
        git(repo, "commit", "-q", "-m", "base");

        Cli.Result r = cli.run(
                Map.of(
                        "ANTHROPIC_API_KEY",
                        REAL_KEY,
                        // the loopback API server's CA: the daemon trusts it as one of the host's
                        "NODE_EXTRA_CA_CERTS",
                        tmp.resolve("test-ca.pem").toString()),
                new byte[0],
                "run",
                "--name",
                "ag",
                "--image",
                "trust-test",
                "--workspace",
                repo.toString(),
                "--agent",
                "claude",
                "--task",
                "write the result file",
                "--add-host",
                "api.anthropic.com:127.0.0.1",
                "-e",
                "ANTHROPIC_BASE_URL=https://api.anthropic.com:"
                        + api.getAddress().getPort(),
                "-e",
                "PATH=/workspace/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assertThat(r.exit()).as("stdout %s\nstderr %s", r.out(), r.err()).isZero();
        assertThat(r.out()).contains("HTTP/1.1 200");
        // The request toward the API host carried the real key, put in by the egress proxy.
        assertThat(apiKeys).containsEntry("/v1/messages", REAL_KEY);
        // Its work comes back with pull.
        assertThat(cli.run("pull", "ag").exit()).isZero();
        assertThat(git(repo, "show", "airlock/ag:agent-result.txt")).isEqualTo("write the result file\n");
        // In the sandbox: only the placeholder, in the environment, files and /proc.
        cli.run("start", "ag");
        String placeholder = cli.run("exec", "ag", "--", "sh", "-c", "echo $ANTHROPIC_API_KEY")
                .out()
                .strip();
        assertThat(placeholder).startsWith("airlock-secret-");
        Cli.Result found = cli.run(
                "exec",
                "ag",
                "--",
                "sh",
                "-c",
                "grep -rsl -- '" + REAL_KEY + "' /workspace /root /tmp /etc /home /var /proc/[0-9]*/environ; true");
        assertThat(found.out()).isEmpty();
        assertThat(cli.run("agent", "ls").out()).contains("claude", "api.anthropic.com", "ANTHROPIC_API_KEY");
    }
}
