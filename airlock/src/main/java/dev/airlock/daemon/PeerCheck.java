package dev.airlock.daemon;

import dev.airlock.local.DaemonLog;
import dev.airlock.wire.ApiError;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.nio.channels.NetworkChannel;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.jspecify.annotations.Nullable;

/**
 * Serves only the daemon's own user and root on the API socket, whatever its file permissions
 * say: the kernel's account of who is at the other end of each connection ({@code SO_PEERCRED},
 * taken when the client connected, so it cannot be forged by the client) is checked before any
 * request reaches the API. The socket is 0600 in a 0700 directory already; this holds when those
 * are widened (an ACL, a shared runtime directory, a mode changed by hand), since the API hands
 * out shells, files and secrets of every sandbox. Anyone else gets a 403 that says why, and the
 * daemon's log a line (at most one per user a minute, so a refused user cannot flood the log).
 */
final class PeerCheck extends Handler.Wrapper {
    /** What a connection's verdict is kept under, so it is taken once per connection. */
    private static final String VERDICT = PeerCheck.class.getName() + ".verdict";

    private static final Duration LOG_EVERY = Duration.ofMinutes(1);

    private final Set<UserPrincipal> served;
    private final Predicate<Request> onUnixSocket;
    private final ConcurrentHashMap<String, Long> lastLogged = new ConcurrentHashMap<>();

    /**
     * {@code onUnixSocket}: whether a request came over the unix socket; the others (TCP
     * listeners) carry no peer credentials and are checked by their bearer token instead.
     */
    PeerCheck(Handler api, Predicate<Request> onUnixSocket) {
        super(api);
        this.served = servedUsers();
        this.onUnixSocket = onUnixSocket;
    }

    /** This process's user and root. */
    private static Set<UserPrincipal> servedUsers() {
        try {
            UserPrincipal me = Files.getOwner(Path.of("/proc/self"));
            UserPrincipal root =
                    FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByName("root");
            return me.equals(root) ? Set.of(me) : Set.of(me, root);
        } catch (IOException e) {
            throw new IllegalStateException("cannot tell which user this daemon runs as: " + e.getMessage(), e);
        }
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
        if (!onUnixSocket.test(request)) {
            Handler next = getHandler();
            return next != null && next.handle(request, response, callback);
        }
        Object known = request.getConnectionMetaData().getAttribute(VERDICT);
        String refusal;
        if (known instanceof String r) {
            refusal = r;
        } else {
            refusal = judge(request.getConnectionMetaData()
                    .getConnection()
                    .getEndPoint()
                    .getTransport());
            request.getConnectionMetaData().setAttribute(VERDICT, refusal);
        }
        if (refusal.isEmpty()) {
            Handler next = getHandler();
            return next != null && next.handle(request, response, callback);
        }
        response.setStatus(403);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        response.getHeaders().put(HttpHeader.CONNECTION, "close");
        Content.Sink.write(
                response, true, Json.MAPPER.writeValueAsString(new ApiError(refusal, "FORBIDDEN")) + "\n", callback);
        return true;
    }

    /** Empty when the peer is served; otherwise what to tell it. */
    private String judge(@Nullable Object transport) {
        if (!(transport instanceof NetworkChannel channel)) {
            return refuse("unknown", "the daemon cannot tell who connected (not a unix socket)");
        }
        UnixDomainPrincipal peer;
        try {
            peer = channel.getOption(ExtendedSocketOptions.SO_PEERCRED);
        } catch (IOException | UnsupportedOperationException e) {
            return refuse("unknown", "the daemon cannot tell who connected: " + e.getMessage());
        }
        if (served.contains(peer.user())) {
            return "";
        }
        return refuse(
                peer.user().getName(),
                "this Airlock daemon serves only its own user and root, not "
                        + peer.user().getName() + "; run airlock as yourself, which starts your own daemon");
    }

    private String refuse(String who, String message) {
        long now = System.nanoTime();
        Long before = lastLogged.get(who);
        if (before == null || now - before > LOG_EVERY.toNanos()) {
            lastLogged.put(who, now);
            DaemonLog.log("refused an API client running as user " + who + " (served: "
                    + served.stream().map(UserPrincipal::getName).sorted().toList() + ")");
        }
        return message;
    }
}
