package dev.airlock.e2b;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.testing.Cli;
import dev.airlock.wire.Json;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Map;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * The e2b SDK scenario on container sandboxes, and every kind of bad input on both halves of
 * the endpoint: a clear error with the right status, and nothing made or changed.
 */
class ContainerE2bTest extends E2bEndpointTest {
    private final HttpClient http = HttpClient.newHttpClient();

    @Override
    String runtime() {
        return "container";
    }

    record Answer(int status, String body) {
        JsonNode json() {
            return Json.MAPPER.readTree(body);
        }
    }

    Answer send(String method, String path, Map<String, String> headers, byte[] body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path))
                .method(method, HttpRequest.BodyPublishers.ofByteArray(body));
        headers.forEach(b::header);
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Answer(r.statusCode(), r.body());
    }

    Answer control(String method, String path, String body) throws Exception {
        return send(
                method,
                path,
                Map.of("X-API-KEY", apiKey, "Content-Type", "application/json"),
                body.getBytes(StandardCharsets.UTF_8));
    }

    private String sandboxes() {
        Cli.Result ps = cli.run("ps", "-a");
        return ps.out();
    }

    @Test
    void theControlPlaneRefusesBadInputAndMakesNothing() throws Exception {
        String before = sandboxes();

        Answer noKey = send(
                "POST",
                "/sandboxes",
                Map.of("Content-Type", "application/json"),
                "{\"templateID\":\"base\"}".getBytes(StandardCharsets.UTF_8));
        assertThat(noKey.status()).isEqualTo(401);
        assertThat(noKey.json().get("message").stringValue()).contains("API key");
        Answer wrongKey = send("GET", "/v2/sandboxes", Map.of("X-API-KEY", "e2b_wrong"), new byte[0]);
        assertThat(wrongKey.status()).isEqualTo(401);
        assertThat(wrongKey.json().get("code").intValue()).isEqualTo(401);

        Answer unknownTemplate = control("POST", "/v2/sandboxes", "{\"templateID\":\"no-such-image\"}");
        assertThat(unknownTemplate.status()).isEqualTo(404);
        assertThat(unknownTemplate.json().get("message").stringValue()).contains("no-such-image");

        Answer malformed = control("POST", "/sandboxes", "{\"templateID\": \"base\",");
        assertThat(malformed.status()).isEqualTo(400);
        assertThat(malformed.json().get("message").stringValue()).contains("not valid JSON");
        assertThat(control("POST", "/sandboxes", "{}").status()).isEqualTo(400);
        assertThat(control("POST", "/sandboxes", "{\"templateID\":\"base\",\"timeout\":-5}")
                        .status())
                .isEqualTo(400);
        assertThat(control("POST", "/sandboxes", "{\"templateID\":\"base\",\"envVars\":{\"A\":1}}")
                        .status())
                .isEqualTo(400);

        Answer unknown = control("GET", "/sandboxes/e2b-nosuchsandbox", "");
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(control("DELETE", "/sandboxes/e2b-nosuchsandbox", "").status())
                .isEqualTo(404);
        assertThat(control("POST", "/sandboxes/e2b-nosuchsandbox/timeout", "{\"timeout\":30}")
                        .status())
                .isEqualTo(404);

        assertThat(sandboxes()).as("no bad request left a sandbox behind").isEqualTo(before);
        java.nio.file.Path records = dirs.data().resolve("e2b/sandboxes.json");
        if (Files.exists(records)) {
            assertThat(Files.readString(records)).doesNotContain("e2b-");
        }
    }

    @Test
    void envdRefusesBadInputAndKeepsToTheSandbox() throws Exception {
        Answer created = control("POST", "/sandboxes", "{\"templateID\":\"base\",\"timeout\":300}");
        assertThat(created.status()).as(created.body()).isEqualTo(201);
        String id = created.json().get("sandboxID").stringValue();
        String token = created.json().get("envdAccessToken").stringValue();
        Map<String, String> envd = Map.of("E2b-Sandbox-Id", id, "E2b-Sandbox-Port", "49983", "X-Access-Token", token);
        try {
            // No token, or another sandbox's: refused.
            Answer noToken = send("GET", "/files?path=/etc/hostname", Map.of("E2b-Sandbox-Id", id), new byte[0]);
            assertThat(noToken.status()).isEqualTo(401);
            Answer wrongToken = send(
                    "POST",
                    "/filesystem.Filesystem/Stat",
                    Map.of("E2b-Sandbox-Id", id, "X-Access-Token", "0".repeat(48), "Content-Type", "application/json"),
                    "{\"path\":\"/\"}".getBytes(StandardCharsets.UTF_8));
            assertThat(wrongToken.status()).isEqualTo(401);
            assertThat(wrongToken.json().get("code").stringValue()).isEqualTo("unauthenticated");

            // An unknown sandbox: E2B's proxy answer.
            Answer unknown = send("GET", "/health", Map.of("E2b-Sandbox-Id", "e2b-nosuchsandbox"), new byte[0]);
            assertThat(unknown.status()).isEqualTo(502);
            assertThat(unknown.json().get("message").stringValue()).contains("e2b-nosuchsandbox");
            assertThat(send("GET", "/health", Map.of("E2b-Sandbox-Id", id), new byte[0])
                            .status())
                    .isEqualTo(204);

            // Malformed RPCs: a clear Connect error.
            Answer badJson = send(
                    "POST",
                    "/filesystem.Filesystem/Stat",
                    with(envd, "Content-Type", "application/json"),
                    "{\"path\":".getBytes(StandardCharsets.UTF_8));
            assertThat(badJson.status()).isEqualTo(400);
            assertThat(badJson.json().get("code").stringValue()).isEqualTo("invalid_argument");
            Answer noMethod = send(
                    "POST", "/process.Process/Fly", with(envd, "Content-Type", "application/json"), "{}".getBytes());
            assertThat(noMethod.status()).isEqualTo(501);
            Answer missingFile = send(
                    "POST",
                    "/filesystem.Filesystem/Stat",
                    with(envd, "Content-Type", "application/json"),
                    "{\"path\":\"/no/such/file\"}".getBytes(StandardCharsets.UTF_8));
            assertThat(missingFile.status()).isEqualTo(404);
            assertThat(missingFile.json().get("code").stringValue()).isEqualTo("not_found");

            // Paths climb no higher than the sandbox's own root: the guest's file, never the host's.
            Cli.Result marked = cli.run("exec", id, "--", "sh", "-c", "echo inside > /airlock-e2b-marker");
            assertThat(marked.exit()).as(marked.err()).isZero();
            Answer climbed = send("GET", "/files?path=../../../../../../airlock-e2b-marker", envd, new byte[0]);
            assertThat(climbed.status()).isEqualTo(200);
            assertThat(climbed.body()).isEqualTo("inside\n");
            assertThat(java.nio.file.Path.of("/airlock-e2b-marker")).doesNotExist();
            Answer nul = send("GET", "/files?path=/etc/host%00name", envd, new byte[0]);
            assertThat(nul.status()).isEqualTo(400);

            // Oversized uploads (the endpoint runs with --max-upload 1m): 413, the old file intact.
            Answer small = send(
                    "POST",
                    "/files?path=kept.txt",
                    with(envd, "Content-Type", "application/octet-stream"),
                    "old content".getBytes(StandardCharsets.UTF_8));
            assertThat(small.status()).as(small.body()).isEqualTo(200);
            byte[] big = new byte[(2 << 20) + 1];
            Answer tooBig =
                    send("POST", "/files?path=kept.txt", with(envd, "Content-Type", "application/octet-stream"), big);
            assertThat(tooBig.status()).isEqualTo(413);
            assertThat(tooBig.json().get("message").stringValue()).contains("nothing was written");
            String boundary = "airlockboundary";
            byte[] multipart = multipart(boundary, "new.bin", big);
            Answer tooBigMultipart = send(
                    "POST",
                    "/files?path=kept.txt",
                    with(envd, "Content-Type", "multipart/form-data; boundary=" + boundary),
                    multipart);
            assertThat(tooBigMultipart.status()).isEqualTo(413);
            assertThat(send("GET", "/files?path=kept.txt", envd, new byte[0]).body())
                    .isEqualTo("old content");
            Cli.Result ls = cli.run("exec", id, "--", "ls", "-A", "/home/user");
            assertThat(ls.out().strip()).as("no temporary file left beside it").isEqualTo("kept.txt");

            Answer notMultipart =
                    send("POST", "/files?path=x", with(envd, "Content-Type", "text/plain"), "x".getBytes());
            assertThat(notMultipart.status()).isEqualTo(415);
            Answer badUser = send("GET", "/files?path=x&username=no%20such", envd, new byte[0]);
            assertThat(badUser.status()).isEqualTo(400);
        } finally {
            control("DELETE", "/sandboxes/" + id, "");
        }
    }

    private static Map<String, String> with(Map<String, String> headers, String name, String value) {
        java.util.Map<String, String> all = new java.util.HashMap<>(headers);
        all.put(name, value);
        return all;
    }

    private static byte[] multipart(String boundary, String filename, byte[] content) throws Exception {
        var out = new java.io.ByteArrayOutputStream();
        out.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename
                        + "\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .getBytes(StandardCharsets.UTF_8));
        out.write(content);
        out.write(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return out.toByteArray();
    }
}
