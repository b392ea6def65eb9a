package dev.airlock.e2b;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import dev.airlock.wire.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;

/**
 * The E2B endpoint with the real {@code e2b} npm SDK (installed by the test, pinned to a version
 * that runs on Node 20): a sandbox made, a command run with streamed output, env and a non-zero
 * exit, files written, read, listed, moved and removed, a directory watched, stdin, a terminal,
 * listing by metadata, kill. Runs once per runtime.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class E2bEndpointTest {
    /** The e2b SDK release the test pins: 2.x runs on Node >= 20.18.1. */
    static final String SDK = "e2b@2.51.0";

    abstract String runtime();

    AirlockDirs dirs;
    Cli cli;
    Path sdk;

    @Nullable
    Process endpoint;

    String url;
    String apiKey;

    /** An endpoint under test: where it keeps its data, its URL and the API key it takes. */
    record Started(
            AirlockDirs dirs,
            Cli cli,
            String url,
            String apiKey,
            @Nullable Process process) {}

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        Started started = startEndpoint();
        dirs = started.dirs();
        cli = started.cli();
        url = started.url();
        apiKey = started.apiKey();
        endpoint = started.process();
        sdk = installSdk(dirs.data().resolve("node"));
    }

    /** Starts the endpoint under test: here {@code airlock e2b --listen}. */
    Started startEndpoint() throws Exception {
        AirlockDirs dirs = TestHost.isolated("e2b-" + runtime());
        Cli cli = new Cli(dirs);
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        ProcessBuilder pb = new ProcessBuilder(
                        cli.argv("e2b", "--listen", "127.0.0.1:" + port, "--runtime", runtime(), "--max-upload", "1m"))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        cli.environment(pb.environment());
        Process process = pb.start();
        awaitBanner(process, dirs.data().resolve("e2b-endpoint.log"));
        String key = Files.readString(dirs.data().resolve("e2b/api-key")).strip();
        return new Started(dirs, cli, "http://127.0.0.1:" + port, key, process);
    }

    /** Reads the endpoint's stderr until it says it listens; the rest goes to a log file. */
    static void awaitBanner(Process p, Path log) throws IOException {
        BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        for (String line; (line = err.readLine()) != null; ) {
            seen.append(line).append('\n');
            if (line.contains("E2B endpoint on")) {
                Thread.ofVirtual().start(() -> {
                    try (var out = Files.newOutputStream(log)) {
                        p.getErrorStream().transferTo(out);
                    } catch (IOException e) {
                        // the endpoint ended
                    }
                });
                return;
            }
        }
        throw new IllegalStateException("the e2b endpoint exited before listening:\n" + seen);
    }

    static Path installSdk(Path dir) throws Exception {
        Files.createDirectories(dir);
        Process npm = new ProcessBuilder(
                        "npm",
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                        dir.toString(),
                        SDK)
                .redirectErrorStream(true)
                .start();
        String log = new String(npm.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(npm.waitFor(5, TimeUnit.MINUTES)).isTrue();
        assertThat(npm.exitValue()).as("npm install " + SDK + ":\n" + log).isZero();
        try (InputStream script = E2bEndpointTest.class.getResourceAsStream("/e2b/scenario.mjs")) {
            Files.write(dir.resolve("scenario.mjs"), script.readAllBytes());
        }
        return dir;
    }

    @AfterAll
    void tearDown() throws Exception {
        stopEndpoint();
    }

    void stopEndpoint() throws Exception {
        Process p = endpoint;
        if (p != null) {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        TestHost.cleanUp(dirs);
    }

    /** Runs the SDK scenario and returns what it printed. */
    JsonNode scenario() throws Exception {
        ProcessBuilder pb = new ProcessBuilder("node", "scenario.mjs").directory(sdk.toFile());
        pb.environment().putAll(Map.of("E2B_API_URL", url, "E2B_SANDBOX_URL", url, "E2B_API_KEY", apiKey));
        Path errors = sdk.resolve("scenario.err");
        pb.redirectError(errors.toFile());
        Process node = pb.start();
        String out = new String(node.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(node.waitFor(5, TimeUnit.MINUTES)).isTrue();
        assertThat(node.exitValue())
                .as("the SDK scenario failed:\n" + out + Files.readString(errors))
                .isZero();
        String last = out.strip().lines().reduce((a, b) -> b).orElseThrow();
        return Json.MAPPER.readTree(last);
    }

    @Test
    void theE2bSdkDrivesASandbox() throws Exception {
        JsonNode r = scenario();
        String id = r.get("sandboxId").stringValue();
        assertThat(r.get("firstExit").intValue()).isZero();

        JsonNode run = r.get("run");
        assertThat(run.get("exitCode").intValue()).isZero();
        assertThat(run.get("stdout").stringValue()).isEqualTo("line1\nline2\nline3\nhello from env local-var\n");
        assertThat(run.get("stderr").stringValue()).isEqualTo("oops\n");
        // Streamed: the lines came as separate chunks, each as it was printed.
        List<String> chunks = Json.MAPPER.convertValue(run.get("chunks"), List.class);
        assertThat(chunks).hasSizeGreaterThanOrEqualTo(4).contains("line1\n", "ERR:oops\n");

        assertThat(r.get("nonZero").get("name").stringValue()).isEqualTo("CommandExitError");
        assertThat(r.get("nonZero").get("exitCode").intValue()).isEqualTo(7);
        assertThat(r.get("nonZero").get("stderr").stringValue()).isEqualTo("failing\n");
        // E2B's user: uid 1000, at home in /home/user; root when asked.
        assertThat(r.get("identity").stringValue()).isEqualTo("1000\n/home/user\n/home/user\n");
        assertThat(r.get("rootIdentity").stringValue()).isEqualTo("0\n/root\n");

        assertThat(r.get("readText").stringValue()).isEqualTo("hello file\n");
        assertThat(r.get("binaryRoundTrip").booleanValue()).isTrue();
        assertThat(r.get("list").toString())
                .isEqualTo("[{\"name\":\"hello.txt\",\"type\":\"file\",\"path\":\"/home/user/dir/hello.txt\"}]");
        assertThat(r.get("exists").booleanValue()).isTrue();
        assertThat(r.get("missing").booleanValue()).isFalse();
        assertThat(r.get("owner").stringValue())
                .as("written files and made dirs belong to the user")
                .isEqualTo("1000\n1000\n");
        assertThat(r.get("makeDirAgain").booleanValue())
                .as("makeDir of an existing dir")
                .isFalse();
        assertThat(r.get("afterMove").toString()).isEqualTo("[\"moved.txt\"]");
        assertThat(r.get("removed").booleanValue()).isTrue();
        assertThat(r.get("watchEvents").toString()).contains("create:new.txt");
        assertThat(r.get("stdin").stringValue()).isEqualTo("piped\n");

        assertThat(r.get("listed").toString()).contains(id);
        assertThat(r.get("info").get("templateId").stringValue()).isEqualTo("base");
        assertThat(r.get("info").get("state").stringValue()).isEqualTo("running");
        assertThat(r.get("info").get("metadata").get("purpose").stringValue()).isEqualTo("airlock-test");
        assertThat(r.get("running").booleanValue()).isTrue();
        assertThat(r.get("killed").booleanValue()).isTrue();
        assertThat(r.get("killedAgain").booleanValue())
                .as("a second kill finds nothing")
                .isFalse();
        assertThat(r.get("connectAfterKill").stringValue()).isEqualTo("SandboxNotFoundError");

        Cli.Result ps = cli.run("ps", "-a");
        assertThat(ps.out()).as("the killed sandbox is gone from Airlock too").doesNotContain(id);
    }
}
