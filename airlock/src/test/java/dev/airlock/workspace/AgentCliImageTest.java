package dev.airlock.workspace;

import static dev.airlock.workspace.WorkspaceTest.git;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import dev.airlock.host.AirlockDirs;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
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
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The real agent CLIs, from the presets' prepared images ({@code airlock agent prepare}, which
 * installs each from the npm registry once). Tests may not reach the registry, so these use the
 * images a setup step prepared and are skipped, saying so, where one is missing. Each CLI starts
 * in a sandbox with no network and prints its pinned version; then, through {@code run --agent},
 * it makes its first request to a loopback stand-in for its API host (pinned with {@code
 * --add-host}), which must arrive with the real key while the guest holds the placeholder.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AgentCliImageTest {
    private AirlockDirs dirs;
    private Cli cli;
    private HttpsServer api;
    private Path tmp;
    /** The key header of each request, by host and path. */
    private final Map<String, String> keysSeen = new ConcurrentHashMap<>();

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("agent-cli");
        cli = new Cli(dirs).inRuntime("container");
        tmp = Files.createTempDirectory("airlock-agent-cli");
        InterceptionCa testCa = InterceptionCa.generate("Airlock agent CLI test CA");
        api = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        api.setHttpsConfigurator(new HttpsConfigurator(testCa.serverContext(
                List.of("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"))));
        api.createContext("/", x -> {
            try (InputStream in = x.getRequestBody()) {
                in.readAllBytes();
            }
            for (String h : List.of("x-api-key", "authorization", "x-goog-api-key")) {
                String v = x.getRequestHeaders().getFirst(h);
                if (v != null) {
                    keysSeen.put(
                            x.getRequestHeaders().getFirst("Host").replaceFirst(":[0-9]+$", "")
                                    + x.getRequestURI().getPath(),
                            v.replaceFirst("^Bearer ", ""));
                }
            }
            // An authentication error: the CLIs give up at once instead of retrying.
            byte[] body = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"stand-in\"}}"
                    .getBytes(StandardCharsets.UTF_8);
            x.getResponseHeaders().add("Content-Type", "application/json");
            x.sendResponseHeaders(401, body.length);
            x.getResponseBody().write(body);
            x.close();
        });
        api.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        api.start();
        Files.writeString(tmp.resolve("test-ca.pem"), testCa.certificatePem());
    }

    @AfterAll
    void tearDown() {
        api.stop(0);
        TestHost.cleanUp(dirs);
    }

    private Image prepared(String preset) {
        AgentPreset p = AgentPreset.find(preset).orElseThrow();
        Optional<Image> image = new ImageStore(dirs).find(p.imageName(AgentPreset.registryUrl()));
        assumeTrue(
                image.isPresent(),
                "the " + preset + " preset's image is not prepared (airlock agent prepare " + preset
                        + " reaches the npm registry, which tests may not)");
        return image.orElseThrow();
    }

    @ParameterizedTest
    @CsvSource({"claude, 2.1.328", "codex, 0.169.0", "gemini, 0.61.0", "opencode, 1.18.33"})
    void theRealCliStartsInItsPreparedImageWithoutNetwork(String preset, String version) {
        Image image = prepared(preset);
        String binary = AgentPreset.find(preset).orElseThrow().binary();
        Cli.Result r = cli.run(
                // whichever command starts the daemon gives it the stand-in API's CA
                Map.of("NODE_EXTRA_CA_CERTS", tmp.resolve("test-ca.pem").toString()),
                new byte[0],
                "run",
                "--rm",
                "--image",
                image.name(),
                "--network",
                "none",
                "--timeout",
                "2m",
                "--",
                "sh",
                "-c",
                "HOME=/tmp " + binary + " --version; node --version");
        assertThat(r.exit()).as("stdout %s\nstderr %s", r.out(), r.err()).isZero();
        assertThat(r.out()).contains(version);
        if (preset.equals("gemini")) {
            assertThat(r.out()).contains("v20."); // Node's own 20.x build, ahead of bookworm's 18
        }
    }

    // codex takes its base URL from its config (the preset passes OPENAI_BASE_URL on with -c) and
    // its key from CODEX_API_KEY; gemini needs its auth type in its settings (the preset writes
    // it), since GOOGLE_GEMINI_BASE_URL alone selects a type that -p refuses.
    @ParameterizedTest
    @CsvSource({
        "claude, api.anthropic.com, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL",
        "codex, api.openai.com, OPENAI_API_KEY, OPENAI_BASE_URL",
        "gemini, generativelanguage.googleapis.com, GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL",
        "opencode, api.anthropic.com, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL"
    })
    void theRealCliSendsItsFirstRequestWithTheRealKeyAddedAtTheBoundary(
            String preset, String apiHost, String keyVariable, String baseUrlVariable) throws Exception {
        prepared(preset);
        String realKey = "real-" + preset + "-key-" + java.util.UUID.randomUUID();
        Path repo = Files.createDirectories(tmp.resolve("repo-" + preset));
        git(tmp, "init", "-q", "-b", "main", repo.toString());
        Files.writeString(repo.resolve("README"), "a project\n");
        git(repo, "add", "-A");
        git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base");
        String baseUrl =
                "https://" + apiHost + ":" + api.getAddress().getPort() + (preset.equals("codex") ? "/v1" : "");
        Cli.Result r = cli.run(
                Map.of(
                        keyVariable,
                        realKey,
                        "NODE_EXTRA_CA_CERTS",
                        tmp.resolve("test-ca.pem").toString()),
                new byte[0],
                "run",
                "--name",
                "cli-" + preset,
                "--workspace",
                repo.toString(),
                "--agent",
                preset,
                "--task",
                "say hello",
                "--timeout",
                "3m",
                "--add-host",
                apiHost + ":127.0.0.1",
                "-e",
                baseUrlVariable + "=" + baseUrl);
        assertThat(keysSeen.entrySet())
                .as(
                        "exit %d\nstdout %s\nstderr %s\negress logs:\n%s",
                        r.exit(), r.out(), r.err(), AgentPresetSandboxTest.egressLogs(dirs))
                .anyMatch(e -> e.getKey().startsWith(apiHost) && e.getValue().equals(realKey));
        cli.run("rm", "-f", "cli-" + preset);
    }
}
