package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.HostFiles;
import dev.airlock.testing.ServedDaemon;
import dev.airlock.testing.TestHost;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code POST /v1/images/pull} and {@code POST /v1/images/build} through a real {@code airlock
 * serve}, with Debian's curl as the client over the unix socket: progress as JSON lines while the
 * work goes on, the image at the end, and errors (an unknown tag, a failing RUN, a missing
 * context, a malformed request) mapped as every route's are.
 */
class ImageHttpApiTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static Path work;
    private static TestRegistry registry;
    private static ServedDaemon served;
    private static String ref;

    @BeforeAll
    static void setUp() throws Exception {
        TestHost.ready();
        work = Files.createTempDirectory("airlock-image-api");
        registry = TestRegistry.start(work, work.resolve("registry"), "");
        ref = registry.host() + "/test/api:v1";
        TestImages.push(TestImages.buildLayout(work, "v1"), "v1", ref);
        served = new ServedDaemon("image-api");
    }

    @AfterAll
    static void tearDown() {
        served.close();
        TestHost.cleanUp(served.dirs());
        registry.close();
        HostFiles.deleteTree(work);
    }

    /** curl's answer: its exit, the HTTP status and the body's JSON lines. */
    private record Answer(int exit, int status, List<JsonNode> events, String raw) {
        JsonNode last() {
            return events.getLast();
        }

        String output() {
            StringBuilder out = new StringBuilder();
            for (JsonNode e : events) {
                if (e.path("type").asString().equals("output")) {
                    out.append(
                            new String(Base64.getDecoder().decode(e.path("data").asString()), StandardCharsets.UTF_8));
                }
            }
            return out.toString();
        }

        List<String> steps() {
            return events.stream()
                    .filter(e -> e.path("type").asString().equals("step"))
                    .map(e -> e.path("message").asString())
                    .toList();
        }
    }

    private static Answer post(String path, String body) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>(List.of(
                "curl",
                "-sS",
                "-N",
                "--unix-socket",
                served.socket().toString(),
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
                "-w",
                "\n%{http_code}",
                "http://localhost" + path));
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(10, TimeUnit.MINUTES)).isTrue();
        String t = text.strip();
        int nl = t.lastIndexOf('\n');
        int status = Integer.parseInt(t.substring(nl + 1));
        List<JsonNode> events = new ArrayList<>();
        for (String line : (nl < 0 ? "" : t.substring(0, nl)).split("\n")) {
            if (!line.isBlank()) {
                events.add(JSON.readTree(line));
            }
        }
        return new Answer(p.exitValue(), status, events, text);
    }

    @Test
    void pullsAndBuildsOverTheApiWithProgressAndErrorsAsEvents() throws Exception {
        Answer pull =
                post("/v1/images/pull", JSON.writeValueAsString(Map.of("reference", ref, "name", "api/pulled:1")));
        assertThat(pull.status()).as(pull.raw()).isEqualTo(200);
        assertThat(pull.steps()).isNotEmpty();
        assertThat(pull.last().path("type").asString()).as(pull.raw()).isEqualTo("done");
        assertThat(pull.last().path("image").path("name").asString()).isEqualTo("api/pulled:1");
        assertThat(pull.last().path("image").path("id").asString()).hasSize(64);

        Path context = Files.createDirectories(work.resolve("context"));
        Files.writeString(context.resolve("hello.txt"), "hello from the context\n");
        Files.writeString(
                context.resolve("Dockerfile"),
                "FROM api/pulled:1\nUSER root\nCOPY hello.txt /hello.txt\n"
                        + "RUN echo built-by-api && cat /hello.txt > /copy.txt\n");
        Answer build = post(
                "/v1/images/build",
                JSON.writeValueAsString(
                        Map.of("context", context.toString(), "tag", "api/built:1", "runtime", "gvisor")));
        assertThat(build.status()).isEqualTo(200);
        assertThat(build.last().path("type").asString()).as(build.raw()).isEqualTo("done");
        assertThat(build.last().path("image").path("name").asString()).isEqualTo("api/built:1");
        assertThat(build.steps()).anyMatch(s -> s.startsWith("step 4/4: RUN echo built-by-api"));
        assertThat(build.output()).contains("built-by-api");
        assertThat(served.cli().run("image", "ls").out()).contains("api/built:1");

        Files.writeString(
                context.resolve("Dockerfile"), "FROM api/pulled:1\nUSER root\nRUN echo about to fail && exit 3\n");
        Answer failed = post(
                "/v1/images/build",
                JSON.writeValueAsString(
                        Map.of("context", context.toString(), "tag", "api/failed:1", "runtime", "gvisor")));
        assertThat(failed.last().path("type").asString()).as(failed.raw()).isEqualTo("error");
        assertThat(failed.last().path("error").path("error").asString())
                .contains("exit status 3")
                .contains("about to fail");
        assertThat(served.cli().run("image", "ls").out()).doesNotContain("api/failed:1");

        Answer missing = post(
                "/v1/images/build",
                JSON.writeValueAsString(Map.of("context", work.resolve("nope").toString())));
        assertThat(missing.last().path("type").asString()).isEqualTo("error");
        assertThat(missing.last().path("error").path("error").asString()).contains("does not exist");
        assertThat(missing.last().path("error").path("kind").asString()).isEqualTo("INVALID");

        Answer unknown = post(
                "/v1/images/pull", JSON.writeValueAsString(Map.of("reference", registry.host() + "/test/api:nope")));
        assertThat(unknown.last().path("type").asString()).isEqualTo("error");
        assertThat(unknown.last().path("error").path("error").asString()).contains("nope");

        Answer malformed = post("/v1/images/build", "{\"context\": 12, ");
        assertThat(malformed.status()).isEqualTo(400);
    }
}
