package dev.airlock.mcp;

import dev.airlock.service.SandboxService;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.jackson3.JacksonMcpJsonMapper;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.concurrent.CountDownLatch;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code airlock mcp}: the sandbox tools over stdio, as an agent (Claude Code, Cursor, ...)
 * starts an MCP server. The SDK's stdio transport keeps reading until end-of-file but does not
 * end the process; an agent that closes our stdin expects us gone, so the end of the input is
 * watched here and ends the server.
 */
public final class McpStdio {
    static final String NAME = "airlock";
    /** How long answers still owed when the input ends may take before the server goes. */
    private static final java.time.Duration IDLE_GRACE = java.time.Duration.ofSeconds(60);

    private McpStdio() {}

    /** The JSON binding the SDK uses, on Jackson 3 like the rest of Airlock. */
    static McpJsonMapper jsonMapper() {
        return new JacksonMcpJsonMapper(JsonMapper.builder().build());
    }

    static String version() {
        String v = McpStdio.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    static String instructions() {
        return "Airlock runs commands in isolated Linux sandboxes on this machine. Create one with"
                + " create_sandbox (optionally with a copy of a git repository as its workspace), run commands"
                + " with exec, move files with read_file/write_file/list_files, bring a workspace's commits"
                + " home with pull_workspace, and remove it with remove_sandbox when done. Sandboxes have no"
                + " network unless hosts are allowed.";
    }

    /**
     * The longest JSON-RPC message (one line) taken on stdio: room for write_file's largest
     * content as base64 and its JSON escaping. The SDK's transport stops reading for good at a
     * longer line (and answers nothing), so {@link StdioLines} cuts the line off first and the
     * server ends with a reason instead of hanging its client.
     */
    static final int MAX_MESSAGE_BYTES = 48 << 20;

    /**
     * Serves until {@code in} ends; returns then: true, or false when a message longer than
     * {@link #MAX_MESSAGE_BYTES} ended the session (said on stderr).
     */
    public static boolean serve(SandboxService service, InputStream in, OutputStream out) throws InterruptedException {
        CountDownLatch ended = new CountDownLatch(1);
        McpJsonMapper json = jsonMapper();
        StdioLines lines = new StdioLines(json, in, out, ended::countDown);
        StdioServerTransportProvider transport =
                new StdioServerTransportProvider(json, lines.input(), lines.output(), MAX_MESSAGE_BYTES);
        SandboxTools tools = new SandboxTools(service, json);
        McpSyncServer server = McpServer.sync(transport)
                .serverInfo(NAME, version())
                .instructions(instructions())
                .capabilities(SandboxTools.capabilities())
                .jsonMapper(json)
                .tools(tools.all())
                .build();
        try {
            ended.await();
            tools.awaitIdle(IDLE_GRACE);
        } finally {
            server.closeGracefully();
        }
        return !lines.oversized();
    }
}
