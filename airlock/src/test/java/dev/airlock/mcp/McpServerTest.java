package dev.airlock.mcp;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.spec.McpSchema.CallToolRequest;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.TextContent;
import io.modelcontextprotocol.spec.McpSchema.Tool;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code airlock mcp} with the MCP Java SDK's own client, as an agent meets it: over stdio (the
 * CLI started as a child process) the tools are listed and sandboxes are made, used (exec, files,
 * a workspace pulled back to a branch, a host allowed live, a microVM forked) and removed; every
 * bad call is a tool error in words; the server ends when its input does; over streamable HTTP a
 * request without the bearer token is refused.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class McpServerTest {
    private AirlockDirs dirs;
    private Cli cli;
    private McpSyncClient client;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("mcp");
        cli = new Cli(dirs);
        List<String> argv = cli.argv("mcp");
        Map<String, String> env = new HashMap<>(System.getenv());
        cli.environment(env);
        ServerParameters params = ServerParameters.builder(argv.get(0))
                .args(argv.subList(1, argv.size()))
                .env(env)
                .build();
        client = McpClient.sync(new StdioClientTransport(params, McpStdio.jsonMapper()))
                .requestTimeout(Duration.ofMinutes(3))
                .build();
        client.initialize();
    }

    @AfterAll
    void tearDown() {
        if (client != null) {
            client.closeGracefully();
        }
        TestHost.cleanUp(dirs);
    }

    private CallToolResult call(String tool, Map<String, Object> args) {
        return client.callTool(new CallToolRequest(tool, args));
    }

    private static String text(CallToolResult r) {
        return ((TextContent) r.content().get(0)).text();
    }

    @Test
    void anAgentMakesUsesAndRemovesASandbox() {
        List<Tool> tools = client.listTools().tools();
        assertThat(tools)
                .extracting(Tool::name)
                .containsExactly(
                        "create_sandbox",
                        "list_sandboxes",
                        "remove_sandbox",
                        "exec",
                        "read_file",
                        "write_file",
                        "list_files",
                        "fork_sandbox",
                        "pull_workspace",
                        "allow_host");
        assertThat(tools).allSatisfy(t -> assertThat(t.description()).hasSizeGreaterThan(80));

        CallToolResult created =
                call("create_sandbox", Map.of("name", "agent-box", "runtime", "container", "env", Map.of("A", "1")));
        assertThat(created.isError()).as(text(created)).isFalse();
        assertThat(text(created)).contains("agent-box").contains("running");

        CallToolResult ran =
                call("exec", Map.of("sandbox", "agent-box", "command", "echo out $A; echo err >&2; exit 3"));
        assertThat(ran.isError()).as("a non-zero exit is the command's answer").isFalse();
        assertThat(text(ran)).startsWith("exit code 3").contains("out 1").contains("err");
        assertThat(ran.structuredContent()).isInstanceOf(Map.class);
        assertThat(((Map<?, ?>) ran.structuredContent()).get("exitCode")).isEqualTo(3);

        CallToolResult long_ =
                call("exec", Map.of("sandbox", "agent-box", "command", "seq 1 100000", "max_output_bytes", 1000));
        assertThat(text(long_)).contains("bytes omitted").contains("\n100000\n").hasSizeLessThan(1400);

        CallToolResult slow = call("exec", Map.of("sandbox", "agent-box", "command", "sleep 60", "timeout_seconds", 1));
        assertThat(slow.isError()).isFalse();
        assertThat(text(slow)).startsWith("timed out after 1 s and was killed");
        assertThat(((Map<?, ?>) slow.structuredContent()).get("timedOut")).isEqualTo(true);

        CallToolResult oversized = call(
                "write_file",
                Map.of("sandbox", "agent-box", "path", "/work/big.txt", "content", "x".repeat((16 << 20) + 1)));
        assertThat(oversized.isError()).isTrue();
        assertThat(text(oversized)).contains("at most 16777216");
        CallToolResult wrote = call(
                "write_file",
                Map.of("sandbox", "agent-box", "path", "/work/notes/a.txt", "content", "line one\nline two\n"));
        assertThat(wrote.isError()).as(text(wrote)).isFalse();
        CallToolResult read = call("read_file", Map.of("sandbox", "agent-box", "path", "/work/notes/a.txt"));
        assertThat(text(read)).isEqualTo("line one\nline two\n");
        CallToolResult tooLong =
                call("read_file", Map.of("sandbox", "agent-box", "path", "/work/notes/a.txt", "max_bytes", 10));
        assertThat(tooLong.isError()).isTrue();
        assertThat(text(tooLong)).contains("is 18 bytes, more than the 10 this call may read");
        CallToolResult bin = call(
                "write_file",
                Map.of("sandbox", "agent-box", "path", "/work/b.bin", "content", "AP8A/w==", "encoding", "base64"));
        assertThat(bin.isError()).as(text(bin)).isFalse();
        assertThat(text(call("read_file", Map.of("sandbox", "agent-box", "path", "/work/b.bin"))))
                .contains("not UTF-8")
                .endsWith("AP8A/w==");
        CallToolResult listed = call("list_files", Map.of("sandbox", "agent-box", "path", "/work"));
        assertThat(text(listed)).contains("dir  0755").contains("notes/").contains("b.bin");
        assertThat(text(listed)).as("the refused upload left nothing").doesNotContain("big.txt");
        assertThat(text(call("list_sandboxes", Map.of()))).contains("name=agent-box state=running runtime=container");

        CallToolResult removed = call("remove_sandbox", Map.of("sandbox", "agent-box"));
        assertThat(removed.isError()).as(text(removed)).isFalse();
        assertThat(cli.run("ps", "-a").out()).doesNotContain("agent-box");
    }

    @Test
    void everyBadCallIsAToolErrorInWords() {
        CallToolResult unknown = call("exec", Map.of("sandbox", "no-such-box", "command", "true"));
        assertThat(unknown.isError()).isTrue();
        assertThat(text(unknown)).contains("no such sandbox 'no-such-box'");

        CallToolResult missing = call("exec", Map.of("sandbox", "no-such-box"));
        assertThat(missing.isError()).isTrue();
        assertThat(text(missing)).contains("'command'").contains("'argv'");

        CallToolResult mistyped = call("exec", Map.of("sandbox", "x", "command", "true", "timeout_seconds", "soon"));
        assertThat(mistyped.isError()).isTrue();
        assertThat(text(mistyped)).contains("timeout_seconds").contains("integer expected");

        CallToolResult relative = call("read_file", Map.of("sandbox", "x", "path", "etc/passwd"));
        assertThat(relative.isError()).isTrue();
        assertThat(text(relative)).contains("must be absolute");

        CallToolResult badName = call("create_sandbox", Map.of("name", "bad name!", "runtime", "container"));
        assertThat(badName.isError()).isTrue();
        assertThat(text(badName)).contains("invalid sandbox name");

        CallToolResult badImage = call("create_sandbox", Map.of("image", "no-such-image", "runtime", "container"));
        assertThat(badImage.isError()).isTrue();
        assertThat(text(badImage)).contains("no-such-image");
        assertThat(cli.run("ps", "-a").out()).as("nothing half made").doesNotContain("no-such-image");

        CallToolResult noHosts = call("allow_host", Map.of("sandbox", "x"));
        assertThat(noHosts.isError()).isTrue();
        assertThat(text(noHosts)).contains("'hosts'");

        CallToolResult notARepo = call(
                "create_sandbox",
                Map.of(
                        "name",
                        "no-repo",
                        "runtime",
                        "container",
                        "workspace",
                        dirs.data().toString()));
        assertThat(notARepo.isError()).isTrue();
        assertThat(text(notARepo)).contains("git");
        assertThat(cli.run("ps", "-a").out()).as("nothing half made").doesNotContain("no-repo");

        CallToolResult noWorkspace = call("pull_workspace", Map.of("sandbox", "no-such-box"));
        assertThat(noWorkspace.isError()).isTrue();
        assertThat(text(noWorkspace)).contains("no such sandbox 'no-such-box'");
    }

    @Test
    void aWorkspaceComesBackAsABranchAndAHostIsAllowedLive() throws Exception {
        Path repo = Files.createTempDirectory("airlock-mcp-repo");
        HttpServer upstream = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 8);
        upstream.createContext("/", exchange -> {
            byte[] body = "hello from loopback\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        upstream.start();
        try {
            git(repo, "init", "-q", "-b", "main");
            git(repo, "config", "user.name", "Test User");
            git(repo, "config", "user.email", "test@example.com");
            Files.writeString(repo.resolve("a.txt"), "alpha\n");
            git(repo, "add", "-A");
            git(repo, "commit", "-q", "-m", "initial");
            String base = git(repo, "rev-parse", "HEAD").strip();

            CallToolResult created = call(
                    "create_sandbox",
                    Map.of(
                            "name",
                            "ws-box",
                            "runtime",
                            "container",
                            "workspace",
                            repo.toString(),
                            "allow_hosts",
                            List.of("first.test")));
            assertThat(created.isError()).as(text(created)).isFalse();
            assertThat(text(created)).contains("/workspace").contains("pull_workspace");

            CallToolResult committed = call(
                    "exec",
                    Map.of(
                            "sandbox",
                            "ws-box",
                            "command",
                            "cd /workspace && echo beta >> a.txt && git commit -qam 'from the agent'"));
            assertThat(((Map<?, ?>) committed.structuredContent()).get("exitCode"))
                    .as(text(committed))
                    .isEqualTo(0);
            CallToolResult pulled = call("pull_workspace", Map.of("sandbox", "ws-box"));
            assertThat(pulled.isError()).as(text(pulled)).isFalse();
            assertThat(text(pulled)).contains("airlock/ws-box").contains("1 commit(s)");
            assertThat(git(repo, "log", "--format=%s", base + "..airlock/ws-box"))
                    .isEqualTo("from the agent\n");
            assertThat(git(repo, "rev-parse", "HEAD").strip())
                    .as("the checkout never moves")
                    .isEqualTo(base);

            // late.test names the loopback server; it is refused until allow_host adds it.
            assertThat(cli.run("network", "add-host", "ws-box", "late.test:127.0.0.1")
                            .exit())
                    .isZero();
            String fetch = "curl -sS http://late.test:" + upstream.getAddress().getPort() + "/";
            assertThat(text(call("exec", Map.of("sandbox", "ws-box", "command", fetch))))
                    .contains("late.test is not on the allowlist");
            CallToolResult allowed = call("allow_host", Map.of("sandbox", "ws-box", "hosts", List.of("late.test")));
            assertThat(allowed.isError()).as(text(allowed)).isFalse();
            assertThat(text(allowed)).contains("first.test").contains("late.test");
            assertThat(text(call("exec", Map.of("sandbox", "ws-box", "command", fetch))))
                    .startsWith("exit code 0")
                    .contains("hello from loopback");

            CallToolResult noFork = call("fork_sandbox", Map.of("sandbox", "ws-box"));
            assertThat(noFork.isError()).as("a container cannot be forked").isTrue();
            assertThat(text(noFork)).contains("(container) cannot do it");
            assertThat(call("remove_sandbox", Map.of("sandbox", "ws-box")).isError())
                    .isFalse();
        } finally {
            upstream.stop(0);
            HostFiles.deleteTree(repo);
        }
    }

    /** The one microVM case: fork is a microVM feature. */
    @Test
    void aMicrovmSandboxForksWithItsFiles() {
        CallToolResult created = call("create_sandbox", Map.of("name", "vm-box", "runtime", "microvm"));
        assertThat(created.isError()).as(text(created)).isFalse();
        assertThat(call("write_file", Map.of("sandbox", "vm-box", "path", "/root/state", "content", "before fork\n"))
                        .isError())
                .isFalse();
        CallToolResult forked = call("fork_sandbox", Map.of("sandbox", "vm-box", "count", 1));
        assertThat(forked.isError()).as(text(forked)).isFalse();
        String clone = text(forked)
                .substring("forked into ".length(), text(forked).indexOf(';'))
                .strip();
        assertThat(text(call("read_file", Map.of("sandbox", clone, "path", "/root/state"))))
                .isEqualTo("before fork\n");
        call("write_file", Map.of("sandbox", clone, "path", "/root/state", "content", "clone\n"));
        assertThat(text(call("read_file", Map.of("sandbox", "vm-box", "path", "/root/state"))))
                .as("the clones diverge")
                .isEqualTo("before fork\n");
        assertThat(call("remove_sandbox", Map.of("sandbox", clone)).isError()).isFalse();
        assertThat(call("remove_sandbox", Map.of("sandbox", "vm-box")).isError())
                .isFalse();
    }

    private static String git(Path repo, String... args) {
        List<String> argv = new java.util.ArrayList<>(List.of("git", "-C", repo.toString()));
        argv.addAll(List.of(args));
        HostCommand.Result r = HostCommand.run(argv, null, null);
        assertThat(r.exitCode())
                .as("git " + String.join(" ", args) + ": " + r.output())
                .isZero();
        return r.output();
    }

    @Test
    void theStdioServerEndsWhenItsInputEnds() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cli.argv("mcp")).redirectErrorStream(true);
        cli.environment(pb.environment());
        Process p = pb.start();
        p.getOutputStream().close();
        assertThat(p.waitFor(60, TimeUnit.SECONDS))
                .as("airlock mcp still runs after its stdin closed")
                .isTrue();
        assertThat(p.exitValue()).isZero();
    }

    @Test
    void aLineThatIsNotJsonRpcGetsAnErrorAndTheServerGoesOn() throws Exception {
        // This once stopped the server reading for good: the SDK's transport ends its read loop at a
        // line it cannot parse, and the client waited forever for every later answer.
        ProcessBuilder pb = new ProcessBuilder(cli.argv("mcp"));
        cli.environment(pb.environment());
        Process p = pb.start();
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (java.io.IOException e) {
                return e.toString();
            }
        });
        try (var in = p.getOutputStream();
                var out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String initialize = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":"
                    + "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                    + "\"clientInfo\":{\"name\":\"test\",\"version\":\"1\"}}}\n"
                    + "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
            in.write(initialize.getBytes(StandardCharsets.UTF_8));
            in.flush();
            assertThat(out.readLine()).contains("\"id\":0").contains("\"result\"");
            in.write(("{not json\n" + "{\"jsonrpc\":\"2.0\",\"id\":7}\n" + "[1,2]\n"
                            + "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n")
                    .getBytes(StandardCharsets.UTF_8));
            in.flush();
            var json = tools.jackson.databind.json.JsonMapper.builder().build();
            List<tools.jackson.databind.JsonNode> answers = new java.util.ArrayList<>();
            // read on a thread of its own: a server that stops answering must fail the test, not hang it
            CompletableFuture<List<String>> lines = CompletableFuture.supplyAsync(
                    () -> {
                        List<String> got = new java.util.ArrayList<>();
                        try {
                            for (String l; got.size() < 4 && (l = out.readLine()) != null; ) {
                                got.add(l);
                            }
                        } catch (java.io.IOException e) {
                            got.add(e.toString());
                        }
                        return got;
                    },
                    r -> Thread.ofVirtual().start(r));
            try {
                lines.get(60, TimeUnit.SECONDS).forEach(l -> answers.add(json.readTree(l)));
            } catch (java.util.concurrent.TimeoutException e) {
                p.destroyForcibly();
                throw new AssertionError("no 4 answers within 60 s (stderr: " + err.get(10, TimeUnit.SECONDS) + ")");
            }
            assertThat(answers).hasSize(4);
            assertThat(answers.subList(0, 3))
                    .allSatisfy(a -> assertThat(a.get("id").isNull()).isTrue())
                    .extracting(a -> a.get("error").get("code").asInt())
                    .containsExactly(-32700, -32600, -32600);
            assertThat(answers.get(0).get("error").get("message").asString()).contains("not JSON");
            assertThat(answers.get(3).get("id").asInt())
                    .as("the ping after them is answered")
                    .isEqualTo(1);
            assertThat(answers.get(3).has("result")).isTrue();
            in.close();
        } finally {
            assertThat(p.waitFor(60, TimeUnit.SECONDS))
                    .as("airlock mcp ends when its input ends")
                    .isTrue();
            p.destroyForcibly();
        }
        assertThat(p.exitValue()).isZero();
        assertThat(err.get(10, TimeUnit.SECONDS)).doesNotContain("\tat ");
    }

    @Test
    void aMessageTooLongForStdioEndsTheServerWithAReason() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cli.argv("mcp")).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        cli.environment(pb.environment());
        Process p = pb.start();
        Thread writer = Thread.ofVirtual().start(() -> {
            byte[] chunk = new byte[1 << 20];
            java.util.Arrays.fill(chunk, (byte) 'x');
            try (var in = p.getOutputStream()) {
                in.write("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"pad\":\""
                        .getBytes(StandardCharsets.UTF_8));
                for (int i = 0; i <= McpStdio.MAX_MESSAGE_BYTES >> 20; i++) {
                    in.write(chunk);
                }
            } catch (java.io.IOException e) {
                // the server stopped reading: what this test expects
            }
        });
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (java.io.IOException e) {
                return e.toString();
            }
        });
        try {
            assertThat(p.waitFor(60, TimeUnit.SECONDS))
                    .as("the server hangs after a too long message")
                    .isTrue();
            writer.join();
            assertThat(p.exitValue()).isEqualTo(125);
            assertThat(err.get(10, TimeUnit.SECONDS)).contains("a message longer than 48 MiB arrived");
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void overHttpOnlyTheTokenGetsIn() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        ProcessBuilder pb = new ProcessBuilder(cli.argv("mcp", "--listen", "127.0.0.1:" + port))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        cli.environment(pb.environment());
        Process server = pb.start();
        try {
            BufferedReader err =
                    new BufferedReader(new InputStreamReader(server.getErrorStream(), StandardCharsets.UTF_8));
            String line;
            while ((line = err.readLine()) != null && !line.contains("MCP on http://")) {
                // startup output before the banner
            }
            assertThat(line).as("the server printed where it listens").isNotNull();
            Thread.ofVirtual().start(() -> {
                try {
                    server.getErrorStream().transferTo(java.io.OutputStream.nullOutputStream());
                } catch (java.io.IOException e) {
                    // ended
                }
            });
            String url = "http://127.0.0.1:" + port;
            HttpResponse<String> refused = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(URI.create(url + "/mcp"))
                                    .header("Content-Type", "application/json")
                                    .header("Accept", "application/json, text/event-stream")
                                    .POST(HttpRequest.BodyPublishers.ofString(
                                            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}"))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
            assertThat(refused.statusCode()).isEqualTo(401);
            assertThat(refused.body()).contains("bearer token");

            String token = Files.readString(dirs.data().resolve("mcp/token")).strip();
            McpSyncClient http = McpClient.sync(HttpClientStreamableHttpTransport.builder(url)
                            .endpoint("/mcp")
                            .requestBuilder(HttpRequest.newBuilder().header("Authorization", "Bearer " + token))
                            .jsonMapper(McpStdio.jsonMapper())
                            .build())
                    .requestTimeout(Duration.ofMinutes(1))
                    .build();
            try {
                http.initialize();
                assertThat(http.listTools().tools()).hasSize(10);
                CallToolResult r = http.callTool(new CallToolRequest("list_sandboxes", Map.of()));
                assertThat(r.isError()).isFalse();
                HttpResponse<String> tooLong = HttpClient.newHttpClient()
                        .send(
                                HttpRequest.newBuilder(URI.create(url + "/mcp"))
                                        .header("Authorization", "Bearer " + token)
                                        .header("Content-Type", "application/json")
                                        .header("Accept", "application/json, text/event-stream")
                                        .POST(HttpRequest.BodyPublishers.ofByteArray(
                                                new byte[McpStdio.MAX_MESSAGE_BYTES + 1]))
                                        .build(),
                                HttpResponse.BodyHandlers.ofString());
                assertThat(tooLong.statusCode()).isEqualTo(413);
                assertThat(http.callTool(new CallToolRequest("list_sandboxes", Map.of()))
                                .isError())
                        .as("the session outlives a refused request")
                        .isFalse();
            } finally {
                http.closeGracefully();
            }
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
