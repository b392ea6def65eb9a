package dev.airlock.api;

import dev.airlock.wire.ApiError;
import dev.airlock.wire.Json;
import dev.airlock.wire.Protocol;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.function.Predicate;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

/**
 * Lets a request through only with the daemon's bearer token ({@code Authorization: Bearer
 * TOKEN}, RFC 6750), except on the connectors that are trusted as they are (the unix socket,
 * whose file mode already admits only its user). No token, a wrong one or another scheme get 401
 * before anything else runs. Tokens are compared in constant time.
 */
public final class BearerAuth extends Handler.Wrapper {
    private final byte[] token;
    private final Predicate<Request> trusted;

    /** {@code trusted}: whether a request came through a connector that needs no token. */
    public BearerAuth(Handler api, String token, Predicate<Request> trusted) {
        super(api);
        this.token = token.getBytes(StandardCharsets.US_ASCII);
        this.trusted = trusted;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
        if (trusted.test(request) || authorized(request.getHeaders().get(HttpHeader.AUTHORIZATION))) {
            return super.handle(request, response, callback);
        }
        String given = request.getHeaders().get(HttpHeader.AUTHORIZATION);
        String why = given == null
                ? "this API needs the daemon's token: send 'Authorization: Bearer TOKEN' (the token is in the"
                        + " file api-token of the daemon's data directory)"
                : "the token is wrong (or not a Bearer token): use the one in the file api-token of the daemon's"
                        + " data directory";
        response.setStatus(401);
        response.getHeaders()
                .put(
                        HttpHeader.WWW_AUTHENTICATE,
                        Protocol.BEARER + " realm=\"airlock\"" + (given == null ? "" : ", error=\"invalid_token\""));
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        Content.Sink.write(
                response, true, Json.MAPPER.writeValueAsString(new ApiError(why, "UNAUTHORIZED")) + "\n", callback);
        return true;
    }

    private boolean authorized(String header) {
        if (header == null || !header.regionMatches(true, 0, Protocol.BEARER + " ", 0, Protocol.BEARER.length() + 1)) {
            return false;
        }
        byte[] given = header.substring(Protocol.BEARER.length() + 1).strip().getBytes(StandardCharsets.US_ASCII);
        return MessageDigest.isEqual(given, token);
    }
}
