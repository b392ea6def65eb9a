package dev.airlock.daemon;

import dev.airlock.wire.Json;
import java.util.function.Predicate;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import tools.jackson.databind.node.ObjectNode;

/**
 * What one daemon port serves when it listens on TCP: the API under {@code /v1/}, MCP's
 * streamable HTTP at {@code /mcp}, and E2B's control plane and envd at every other path (E2B's
 * own routes: {@code /sandboxes}, {@code /v2/sandboxes}, {@code /files}, {@code /health},
 * {@code /process.Process/...}, {@code /filesystem.Filesystem/...}; none starts with {@code /v1/}
 * or is {@code /mcp}), so the unchanged {@code e2b} SDK works with {@code E2B_API_URL} and
 * {@code E2B_SANDBOX_URL} both set to the daemon's URL. The unix socket serves the API alone.
 *
 * <p>Each part checks its own credentials before it does anything: the API and MCP the daemon's
 * bearer token, E2B the same token as its API key ({@code X-API-KEY}) and each sandbox's access
 * token ({@code X-Access-Token}) on envd, as E2B's SDK sends them.
 */
final class ListenerRoutes extends Handler.Sequence {
    static final String API_PREFIX = "/v1/";
    static final String MCP_PATH = "/mcp";

    private final Handler api;
    private final Handler mcp;
    private final Handler e2b;
    private final Predicate<Request> onUnixSocket;

    ListenerRoutes(Handler api, Handler mcp, Handler e2b, Predicate<Request> onUnixSocket) {
        super(api, mcp, e2b);
        this.api = api;
        this.mcp = mcp;
        this.e2b = e2b;
        this.onUnixSocket = onUnixSocket;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
        String path = Request.getPathInContext(request);
        if (onUnixSocket.test(request) || path.startsWith(API_PREFIX)) {
            return api.handle(request, response, callback);
        }
        if (path.equals(MCP_PATH)) {
            return mcp.handle(request, response, callback);
        }
        return e2b.handle(request, response, callback);
    }

    /**
     * E2B's part when another endpoint owns this data directory's E2B records ({@code airlock e2b
     * --listen} started first): every E2B request gets 503 with the reason, in E2B's error shape.
     */
    static final class Unavailable extends Handler.Abstract {
        private final String reason;

        Unavailable(String reason) {
            this.reason = reason;
        }

        @Override
        public boolean handle(Request request, Response response, Callback callback) {
            response.setStatus(503);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            ObjectNode body = Json.MAPPER.createObjectNode().put("code", 503).put("message", reason);
            Content.Sink.write(response, true, body + "\n", callback);
            return true;
        }
    }
}
