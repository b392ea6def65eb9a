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
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Each preset (claude, codex, gemini, opencode) end to end in a container sandbox: {@code run
 * --workspace --agent NAME --task}. The agent CLI is a stand-in (a node script in the repository,
 * first on PATH, acting as the CLI it is named after), because the real ones come from the npm
 * registry, which tests must not reach; the preset's allowlist, key-as-secret, command line and
 * task are the real ones. The API hosts are one loopback HTTPS server pinned with {@code
 * --add-host}, its certificate from a CA the daemon knows only as a host CA.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AgentPresetSandboxTest {
    /** Another allowed host on the same server: the key must not be added toward it. */
    private static final String OTHER_HOST = "other.test";

    private AirlockDirs dirs;
    private Cli cli;
    private HttpsServer api;
    private Path tmp;
    /** The API key header each request carried, by the host it named and its path. */
    private final Map<String, String> keysSeen = new ConcurrentHashMap<>();

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("agent-preset");
        cli = new Cli(dirs).inRuntime("container");
        tmp = Files.createTempDirectory("airlock-agent-preset");
        InterceptionCa testCa = InterceptionCa.generate("Airlock agent preset test CA");
        api = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        api.setHttpsConfigurator(new HttpsConfigurator(testCa.serverContext(
                List.of("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com", OTHER_HOST))));
        api.createContext("/", x -> {
            try (InputStream in = x.getRequestBody()) {
                in.readAllBytes();
            }
            String key = null;
            for (String h : List.of("x-api-key", "authorization", "x-goog-api-key")) {
                String v = x.getRequestHeaders().getFirst(h);
                if (v != null) {
                    key = v.replaceFirst("^Bearer ", "");
                }
            }
            keysSeen.put(
                    x.getRequestHeaders().getFirst("Host").replaceFirst(":[0-9]+$", "")
                            + x.getRequestURI().getPath(),
                    String.valueOf(key));
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
        for (String preset : List.of("claude", "codex", "gemini", "opencode")) {
            cli.run("rm", "-f", "ag-" + preset);
        }
        api.stop(0);
        TestHost.cleanUp(dirs);
    }

    /** Every sandbox's egress decisions, for a failure's message. */
    static String egressLogs(AirlockDirs dirs) {
        try (java.util.stream.Stream<Path> files = Files.walk(dirs.data())) {
            StringBuilder b = new StringBuilder();
            for (Path f : files.filter(f -> f.getFileName().toString().equals("egress.log"))
                    .toList()) {
                b.append(f).append(":\n").append(Files.readString(f));
            }
            return b.toString();
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    /**
     * @param baseUrlVariable the variable the real CLI reads its API's base URL from
     * @param requestPath where the stand-in sends its request, as the real CLI does
     */
    @ParameterizedTest
    @CsvSource({
        "claude, api.anthropic.com, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, /v1/messages",
        "codex, api.openai.com, OPENAI_API_KEY, OPENAI_BASE_URL, /v1/responses",
        "gemini, generativelanguage.googleapis.com, GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL,"
                + " /v1beta/models/gemini-2.5-pro:generateContent",
        "opencode, api.anthropic.com, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, /v1/messages"
    })
    void thePresetRunsItsTaskWithTheKeyAddedAtTheBoundaryOnlyTowardItsApiHostAndItsCommitComesBack(
            String preset, String apiHost, String keyVariable, String baseUrlVariable, String requestPath)
            throws Exception {
        String realKey = "real-" + preset + "-key-" + java.util.UUID.randomUUID();
        String name = "ag-" + preset;
        int port = api.getAddress().getPort();
        Path repo = Files.createDirectories(tmp.resolve("repo-" + preset));
        git(tmp, "init", "-q", "-b", "main", repo.toString());
        git(repo, "config", "user.email", "test@example.com");
        git(repo, "config", "user.name", "test");
        Path bin = Files.createDirectories(repo.resolve("bin"));
        try (InputStream in = Objects.requireNonNull(getClass().getResourceAsStream("stand-in-agent.js"))) {
            Files.write(bin.resolve(preset), in.readAllBytes());
        }
        bin.resolve(preset).toFile().setExecutable(true);
        Files.writeString(repo.resolve("README"), "a project\n");
        git(repo, "add", "-A");
        git(repo, "commit", "-q", "-m", "base");

        Cli.Result r = cli.run(
                Map.of(
                        keyVariable,
                        realKey,
                        // the loopback API server's CA: the daemon trusts it as one of the host's
                        "NODE_EXTRA_CA_CERTS",
                        tmp.resolve("test-ca.pem").toString()),
                new byte[0],
                "run",
                "--name",
                name,
                "--image",
                "trust-test",
                "--workspace",
                repo.toString(),
                "--agent",
                preset,
                "--task",
                "write the " + preset + " result file",
                "--add-host",
                apiHost + ":127.0.0.1",
                "--allow-host",
                OTHER_HOST,
                "--add-host",
                OTHER_HOST + ":127.0.0.1",
                "-e",
                baseUrlVariable + "=https://" + apiHost + ":" + port,
                "-e",
                "PATH=/workspace/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assertThat(r.exit())
                .as("stdout %s\nstderr %s\negress logs:\n%s", r.out(), r.err(), egressLogs(dirs))
                .isZero();
        assertThat(r.out()).contains("HTTP/1.1 200");
        // The request toward the API host carried the real key, put in by the egress proxy.
        assertThat(keysSeen).containsEntry(apiHost + requestPath, realKey);
        // Its work comes back with pull.
        assertThat(cli.run("pull", name).exit()).isZero();
        assertThat(git(repo, "show", "airlock/" + name + ":" + preset + "-result.txt"))
                .isEqualTo("write the " + preset + " result file\n");
        // In the sandbox: only the placeholder, in the environment, files and /proc.
        cli.run("start", name);
        String placeholder = cli.run("exec", name, "--", "sh", "-c", "echo $" + keyVariable)
                .out()
                .strip();
        assertThat(placeholder).startsWith("airlock-secret-");
        Cli.Result found = cli.run(
                "exec",
                name,
                "--",
                "sh",
                "-c",
                "grep -rsl -- '" + realKey + "' /workspace /root /tmp /etc /home /var /proc/[0-9]*/environ; true");
        assertThat(found.out()).isEmpty();
        // The placeholder sent to another allowed host stays the placeholder there.
        Cli.Result other = cli.run(
                "exec",
                name,
                "--",
                "sh",
                "-c",
                "curl -sS -o /dev/null -w '%{http_code}' -H \"x-api-key: $" + keyVariable + "\" https://" + OTHER_HOST
                        + ":" + port + "/elsewhere");
        assertThat(other.out()).as(other.err()).isEqualTo("200");
        assertThat(keysSeen).containsEntry(OTHER_HOST + "/elsewhere", placeholder);
        assertThat(cli.run("agent", "ls").out()).contains(preset, apiHost, keyVariable);
        cli.run("rm", "-f", name);
    }
}
