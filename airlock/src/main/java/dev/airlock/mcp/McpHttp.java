package dev.airlock.mcp;

import dev.airlock.host.TokenFile;
import dev.airlock.service.SandboxService;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.HttpServletStreamableServerTransportProvider;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import org.eclipse.jetty.ee11.servlet.ServletContextHandler;
import org.eclipse.jetty.ee11.servlet.ServletHolder;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.SizeLimitHandler;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * The sandbox tools over MCP's streamable HTTP transport, at {@link #PATH}: a Jetty handler that
 * the daemon mounts beside its API on its TCP listeners ({@code airlock serve --listen}), or that
 * {@link #listen} serves on its own ({@code airlock mcp --listen}). Every request must carry
 * {@code Authorization: Bearer TOKEN}; a request without it is answered 401 before the MCP
 * transport sees it: by the daemon's own token check, or here by {@link BearerGuard}.
 */
public final class McpHttp implements AutoCloseable {
    public static final String PATH = "/mcp";

    private final McpSyncServer server;
    private final Handler handler;

    /**
     * The endpoint over {@code service}, without a token check of its own: for a server that checks
     * every request's token before this handler sees it (the daemon's TCP listeners).
     */
    public McpHttp(SandboxService service) {
        McpJsonMapper json = McpStdio.jsonMapper();
        HttpServletStreamableServerTransportProvider transport = HttpServletStreamableServerTransportProvider.builder()
                .jsonMapper(json)
                .mcpEndpoint(PATH)
                .build();
        this.server = McpServer.sync(transport)
                .serverInfo(McpStdio.NAME, McpStdio.version())
                .instructions(McpStdio.instructions())
                .capabilities(SandboxTools.capabilities())
                .jsonMapper(json)
                .tools(new SandboxTools(service, json).all())
                .build();
        ServletContextHandler servlets = new ServletContextHandler();
        servlets.setContextPath("/");
        servlets.addServlet(new ServletHolder(transport), PATH);
        // Jetty answers 413 to a longer body, with or without Content-Length: the transport reads a
        // request whole before it parses it.
        SizeLimitHandler bounded = new SizeLimitHandler(McpStdio.MAX_MESSAGE_BYTES, -1);
        bounded.setHandler(servlets);
        this.handler = bounded;
    }

    /** The handler to mount: answers {@link #PATH}. */
    public Handler handler() {
        return handler;
    }

    /** Serves the endpoint alone on {@code host:port} (a loopback address unless the user says otherwise). */
    public static Server listen(SandboxService service, String token, String host, int port) throws Exception {
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        Server jetty = new Server(threads);
        ServerConnector connector = new ServerConnector(jetty);
        connector.setHost(host);
        connector.setPort(port);
        jetty.addConnector(connector);
        McpHttp endpoint = new McpHttp(service);
        jetty.setHandler(new BearerGuard(token, endpoint.handler()));
        jetty.addBean(endpoint);
        jetty.start();
        return jetty;
    }

    @Override
    public void close() {
        server.closeGracefully();
    }

    /** Lets a request through only with the bearer token. */
    static final class BearerGuard extends Handler.Wrapper {
        private final String token;

        BearerGuard(String token, Handler inner) {
            super(inner);
            this.token = token;
        }

        @Override
        public boolean handle(Request request, Response response, Callback callback) throws Exception {
            String auth = request.getHeaders().get(HttpHeader.AUTHORIZATION);
            String given = auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7)
                    ? auth.substring(7).strip()
                    : null;
            if (!TokenFile.matches(token, given)) {
                response.setStatus(HttpStatus.UNAUTHORIZED_401);
                response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer realm=\"airlock\"");
                response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
                response.write(
                        true,
                        java.nio.ByteBuffer.wrap(
                                ("{\"error\":\"missing or wrong bearer token: send Authorization: Bearer TOKEN,"
                                                + " the token from the file airlock printed at start\"}")
                                        .getBytes(StandardCharsets.UTF_8)),
                        callback);
                return true;
            }
            return super.handle(request, response, callback);
        }
    }
}
