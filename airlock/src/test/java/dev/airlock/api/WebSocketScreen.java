package dev.airlock.api;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;

/**
 * What a Jetty WebSocket client receives: binary messages as text, text messages prefixed with
 * a NUL (so the two can be told apart), and the close status. Public because Jetty calls a
 * listener's methods through method handles of a public class.
 */
public final class WebSocketScreen implements Session.Listener.AutoDemanding {
    final BlockingQueue<String> messages = new LinkedBlockingQueue<>();
    final CompletableFuture<Integer> closed = new CompletableFuture<>();

    @Override
    public void onWebSocketBinary(ByteBuffer payload, Callback callback) {
        messages.add(StandardCharsets.UTF_8.decode(payload).toString());
        callback.succeed();
    }

    @Override
    public void onWebSocketText(String message) {
        messages.add("\u0000" + message);
    }

    @Override
    public void onWebSocketClose(int statusCode, String reason) {
        closed.complete(statusCode);
    }
}
