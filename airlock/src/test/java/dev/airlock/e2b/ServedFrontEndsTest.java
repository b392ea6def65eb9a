package dev.airlock.e2b;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.testing.Cli;
import dev.airlock.testing.ServedDaemon;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.jackson3.JacksonMcpJsonMapper;
import io.modelcontextprotocol.spec.McpSchema.CallToolRequest;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.TextContent;
import io.modelcontextprotocol.spec.McpSchema.Tool;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.json.JsonMapper;

/**
 * One {@code airlock serve --listen} port serves every network front end: the unchanged
 * {@code e2b} SDK (its whole scenario, with {@code E2B_API_URL} and {@code E2B_SANDBOX_URL} set
 * to the daemon's URL and the daemon's token as its API key), the MCP Java SDK's client over
 * streamable HTTP at {@code /mcp} with the bearer token (refused without it), and the API. One
 * token guards all three; the unix socket still serves the API alone.
 */
class ServedFrontEndsTest extends E2bEndpointTest {
    private @Nullable ServedDaemon served;
    private final HttpClient http = HttpClient.newHttpClient();

    @Override
    String runtime() {
        return "container";
    }

    @Override
    Started startEndpoint() throws Exception {
        // The E2B control plane makes sandboxes of the daemon's default runtime.
        ServedDaemon d = new ServedDaemon("serve-front-ends", Map.of("AIRLOCK_RUNTIME", runtime()));
        served = d;
        // E2B's API key is the daemon's bearer token.
        return new Started(d.dirs(), d.cli(), d.url().toString(), d.token(), null);
    }

    @Override
    void stopEndpoint() {
        ServedDaemon d = served;
        if (d != null) {
            d.close();
        }
    }

    private ServedDaemon served() {
        return Objects.requireNonNull(served, "the daemon did not start");
    }

    private static McpJsonMapper json() {
        return new JacksonMcpJsonMapper(JsonMapper.builder().build());
    }

    private McpSyncClient mcp(String token) {
        return McpClient.sync(HttpClientStreamableHttpTransport.builder(url)
                        .endpoint("/mcp")
                        .requestBuilder(HttpRequest.newBuilder().header("Authorization", "Bearer " + token))
                        .jsonMapper(json())
                        .build())
                .requestTimeout(Duration.ofMinutes(3))
                .build();
    }

    private static String text(CallToolResult r) {
        return ((TextContent) r.content().get(0)).text();
    }

    private HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpRequest.Builder mcpPost(String body) {
        return HttpRequest.newBuilder(URI.create(url + "/mcp"))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json, text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    @Test
    void anMcpClientDrivesASandboxThroughTheDaemonsPort() {
        McpSyncClient client = mcp(served().token());
        try {
            client.initialize();
            List<Tool> tools = client.listTools().tools();
            assertThat(tools).extracting(Tool::name).contains("create_sandbox", "exec", "read_file", "write_file");

            CallToolResult created = client.callTool(
                    new CallToolRequest("create_sandbox", Map.of("name", "served-mcp", "runtime", "container")));
            assertThat(created.isError()).as(text(created)).isFalse();
            CallToolResult ran = client.callTool(
                    new CallToolRequest("exec", Map.of("sandbox", "served-mcp", "command", "echo hi; exit 4")));
            assertThat(ran.isError()).isFalse();
            assertThat(text(ran)).startsWith("exit code 4").contains("hi");
            CallToolResult wrote = client.callTool(new CallToolRequest(
                    "write_file", Map.of("sandbox", "served-mcp", "path", "/tmp/m.txt", "content", "over http\n")));
            assertThat(wrote.isError()).as(text(wrote)).isFalse();
            assertThat(text(client.callTool(
                            new CallToolRequest("read_file", Map.of("sandbox", "served-mcp", "path", "/tmp/m.txt")))))
                    .isEqualTo("over http\n");
            CallToolResult unknown =
                    client.callTool(new CallToolRequest("exec", Map.of("sandbox", "no-such", "command", "true")));
            assertThat(unknown.isError())
                    .as("an unknown sandbox is a tool error")
                    .isTrue();
            assertThat(text(unknown)).contains("no-such");
            CallToolResult removed =
                    client.callTool(new CallToolRequest("remove_sandbox", Map.of("sandbox", "served-mcp")));
            assertThat(removed.isError()).as(text(removed)).isFalse();
            assertThat(cli.run("ps", "-a").out()).doesNotContain("served-mcp");
        } finally {
            client.closeGracefully();
        }
    }

    @Test
    void oneTokenGuardsEveryFrontEndOnThePort() throws Exception {
        String list = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
        HttpResponse<String> noToken = send(mcpPost(list));
        assertThat(noToken.statusCode()).isEqualTo(401);
        assertThat(noToken.body()).contains("Authorization: Bearer");
        HttpResponse<String> wrongToken = send(mcpPost(list).header("Authorization", "Bearer " + "x".repeat(43)));
        assertThat(wrongToken.statusCode()).isEqualTo(401);
        assertThat(wrongToken.body()).contains("token is wrong");
        HttpResponse<String> malformed = send(mcpPost("{\"jsonrpc\":").header("Authorization", "Bearer " + apiKey));
        assertThat(malformed.statusCode())
                .as("a malformed message with the token")
                .isEqualTo(400);
        McpSyncClient stranger = mcp("x".repeat(43));
        try {
            assertThatThrownBy(stranger::initialize)
                    .as("the SDK's client with a wrong token gets no session")
                    .isInstanceOf(RuntimeException.class);
        } finally {
            stranger.close();
        }

        assertThat(send(HttpRequest.newBuilder(URI.create(url + "/v1/health"))).statusCode())
                .isEqualTo(401);
        assertThat(send(HttpRequest.newBuilder(URI.create(url + "/v1/health"))
                                .header("Authorization", "Bearer " + served().token()))
                        .statusCode())
                .isEqualTo(200);

        // E2B's control plane takes the same token as its API key, and nothing else.
        HttpResponse<String> wrongKey = send(
                HttpRequest.newBuilder(URI.create(url + "/v2/sandboxes")).header("X-API-KEY", "e2b_" + "0".repeat(64)));
        assertThat(wrongKey.statusCode()).isEqualTo(401);
        assertThat(wrongKey.body()).contains("API key");
        HttpResponse<String> bearerIsNotAKey = send(HttpRequest.newBuilder(URI.create(url + "/v2/sandboxes"))
                .header("Authorization", "Bearer " + served().token()));
        assertThat(bearerIsNotAKey.statusCode()).isEqualTo(401);
        assertThat(send(HttpRequest.newBuilder(URI.create(url + "/v2/sandboxes"))
                                .header("X-API-KEY", apiKey))
                        .statusCode())
                .isEqualTo(200);
        HttpResponse<String> unknownTemplate = send(HttpRequest.newBuilder(URI.create(url + "/sandboxes"))
                .header("X-API-KEY", apiKey)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"templateID\":\"no-such-image\"}")));
        assertThat(unknownTemplate.statusCode()).isEqualTo(404);
        HttpResponse<String> unknownSandbox =
                send(HttpRequest.newBuilder(URI.create(url + "/health")).header("E2b-Sandbox-Id", "e2b-nosuchsandbox"));
        assertThat(unknownSandbox.statusCode()).isEqualTo(502);

        // The unix socket serves the API alone: no MCP, no E2B there.
        Process curl = new ProcessBuilder(
                        "curl",
                        "-sS",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--unix-socket",
                        served().socket().toString(),
                        "http://airlock/mcp")
                .start();
        String status = new String(curl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(curl.waitFor()).isZero();
        assertThat(status).isEqualTo("404");
    }

    @Test
    void aSecondE2bEndpointOnTheSameDataIsRefusedInWords() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Cli.Result second = cli.run("e2b", "--listen", "127.0.0.1:" + port);
        assertThat(second.exit()).isNotZero();
        assertThat(second.err()).contains("another E2B endpoint already serves").doesNotContain("Exception");
    }
}
