package dev.airlock.cli;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.TokenFile;
import dev.airlock.mcp.McpHttp;
import dev.airlock.mcp.McpStdio;
import dev.airlock.service.SandboxService;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.eclipse.jetty.server.Server;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code airlock mcp}: an MCP server whose tools make and drive sandboxes, through this data
 * directory's daemon. On stdio by default (what an agent starts; it exits when its input ends),
 * or on streamable HTTP with {@code --listen}, guarded by a bearer token.
 */
@Command(
        name = "mcp",
        description = {
            "Serve Airlock's sandbox tools over the Model Context Protocol: on stdin/stdout (for an agent"
                    + " to start), or on HTTP with --listen.",
            "Claude Code: claude mcp add airlock -- /path/to/airlock mcp"
        })
final class McpCommand implements Callable<Integer> {
    @Option(
            names = "--listen",
            paramLabel = "HOST:PORT",
            description = "Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (e.g. 127.0.0.1:8931).")
    @Nullable
    String listen;

    @Option(
            names = "--token-file",
            paramLabel = "FILE",
            description = "With --listen: the bearer token clients must send (default: DATA/mcp/token, made at"
                    + " first start, mode 0600).")
    @Nullable
    Path tokenFile;

    @Override
    public Integer call() throws Exception {
        AirlockDirs dirs = SandboxCommands.dirs();
        SandboxService service = SandboxCommands.client();
        if (listen == null) {
            // 125: Airlock's own error, as the other commands exit
            return McpStdio.serve(service, System.in, System.out) ? 0 : 125;
        }
        Listen at = Listen.parse(listen, "--listen");
        String token = token(dirs);
        Server server = McpHttp.listen(service, token, at.host(), at.port());
        System.err.println("airlock: MCP on http://" + at.host() + ":" + at.port() + McpHttp.PATH
                + " (Authorization: Bearer <the token in " + tokenPath(dirs) + ">)");
        server.join();
        return 0;
    }

    private Path tokenPath(AirlockDirs dirs) {
        return tokenFile != null ? tokenFile : dirs.data().resolve("mcp").resolve("token");
    }

    private String token(AirlockDirs dirs) throws IOException {
        if (tokenFile != null) {
            return TokenFile.read(tokenFile);
        }
        return TokenFile.readOrCreate(tokenPath(dirs), "");
    }
}
