package dev.airlock.api;

import dev.airlock.guest.CommandNotExecutableException;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.SandboxSession;
import dev.airlock.wire.ApiError;
import dev.airlock.wire.ExecEvent;
import dev.airlock.wire.ExecInput;
import dev.airlock.wire.ExecStart;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.StatusCode;
import org.eclipse.jetty.websocket.server.ServerWebSocketContainer;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;

/**
 * Exec and terminals over WebSocket (RFC 6455): {@code GET .../exec/ws} runs any command with its
 * streams kept apart, {@code GET .../terminal} a pseudo-terminal session (a login shell unless a
 * command is given). The command comes in the query ({@code cmd} repeated, {@code env},
 * {@code cwd}, {@code user}, {@code timeoutMs}, {@code tty=ROWSxCOLS} or {@code rows}/{@code cols}).
 *
 * <p>Server to client: binary messages are output (exec: one byte 1 = stdout or 2 = stderr, then
 * the bytes; terminal: the terminal's bytes as they are); text messages are {@link ExecEvent}s
 * ({@code started}, then {@code exit} or {@code error}), after which the server closes (1000).
 * Client to server: binary messages are stdin; text messages are {@link ExecInput}s (eof,
 * signal, resize, base64 stdin). The command starts before the upgrade, so a wrong sandbox or
 * program is an ordinary HTTP error. Output is sent one message at a time, and a client that does
 * not read holds the command back (flow control reaches the guest); a client that goes away
 * kills the command, as a terminal's hang-up would.
 */
// Public only because Jetty calls a listener's methods through method handles of a public class.
public final class WebSocketExec implements Session.Listener {
    private static final long MAX_MESSAGE = 1 << 20;
    /** The relay is made right after the command starts; this only bounds a wait that cannot end. */
    private static final Duration RELAY_MADE = Duration.ofSeconds(30);

    private final SandboxSession session;
    private final Execution ex;
    private final boolean terminal;
    private final boolean stdin;
    private final CountDownLatch opened = new CountDownLatch(1);
    private volatile @Nullable Session socket;
    private boolean stdinOpen;

    private WebSocketExec(SandboxSession session, Execution ex, boolean terminal, boolean stdin) {
        this.session = session;
        this.ex = ex;
        this.terminal = terminal;
        this.stdin = stdin;
        this.stdinOpen = stdin;
    }

    static @Nullable Object run(HttpApi api, HttpApi.Call c, boolean terminal)
            throws IOException, InterruptedException {
        String upgrade = c.request.getHeaders().get(HttpHeader.UPGRADE);
        if (upgrade == null || !upgrade.equalsIgnoreCase("websocket")) {
            throw new SandboxException(c.route.template() + " is a WebSocket (RFC 6455): connect with a WebSocket"
                    + " client (Upgrade: websocket); for plain HTTP use POST .../exec/stream");
        }
        ServerWebSocketContainer container = ServerWebSocketContainer.get(c.request.getContext());
        if (container == null) {
            throw SandboxException.failed("this daemon serves no WebSockets");
        }
        ExecStart start = query(c, terminal);
        boolean stdin = start.stdin() == null || start.stdin();
        ExecSpec spec = ExecRelay.spec(start, stdin);
        SandboxSession session = api.service().session(c.ref());
        WebSocketExec relay;
        Holder holder = new Holder();
        try {
            Execution ex;
            try {
                ex = session.channel().exec(spec, holder.sink(1, terminal), holder.sink(2, terminal));
            } catch (CommandNotFoundException | CommandNotExecutableException e) {
                throw new SandboxException(String.valueOf(e.getMessage()));
            }
            relay = new WebSocketExec(session, ex, terminal, stdin);
            holder.relay.complete(relay);
        } catch (IOException | RuntimeException | InterruptedException e) {
            holder.relay.completeExceptionally(e);
            session.close();
            throw e;
        }
        c.answered = true;
        boolean upgraded;
        try {
            container.setMaxBinaryMessageSize(MAX_MESSAGE);
            container.setMaxTextMessageSize(MAX_MESSAGE);
            upgraded = container.upgrade((rq, rs, cb) -> relay, c.request, c.response, c.callback);
        } catch (RuntimeException e) {
            relay.hangUp();
            throw e;
        }
        if (!upgraded) {
            relay.hangUp();
            c.answered = false;
            throw new SandboxException("the WebSocket upgrade was refused: check the Sec-WebSocket-* headers");
        }
        Thread.ofVirtual().name("ws-exec-wait").start(relay::awaitExit);
        return null;
    }

    private static ExecStart query(HttpApi.Call c, boolean terminal) {
        List<String> cmd = c.queryValues("cmd");
        if (cmd.isEmpty() && terminal) {
            cmd = List.of("/bin/bash", "-l");
        }
        return ExecRelay.fromQuery(c, cmd, terminal);
    }

    /**
     * Lets the output sinks exist before the relay does (the command starts before the upgrade).
     * Output can come before the relay is made (a shell's prompt, on the channel's reader thread,
     * as soon as the command starts): it waits for the relay rather than failing the command's
     * output, which left a terminal silent.
     */
    private static final class Holder {
        final CompletableFuture<WebSocketExec> relay = new CompletableFuture<>();

        OutputStream sink(int channel, boolean raw) {
            return new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    write(new byte[] {(byte) b}, 0, 1);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    WebSocketExec r;
                    try {
                        r = relay.get(RELAY_MADE.toMillis(), TimeUnit.MILLISECONDS);
                    } catch (ExecutionException | TimeoutException e) {
                        throw new IOException("the WebSocket relay was not made", e);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted", e);
                    }
                    ByteBuffer msg;
                    if (raw) {
                        msg = ByteBuffer.wrap(b, off, len);
                    } else {
                        msg = ByteBuffer.allocate(len + 1)
                                .put((byte) channel)
                                .put(b, off, len)
                                .flip();
                    }
                    r.sendBinary(msg);
                }
            };
        }
    }

    @Override
    public void onWebSocketOpen(Session s) {
        socket = s;
        opened.countDown();
        try {
            sendText(ExecEvent.started(ex.pid()));
        } catch (IOException e) {
            hangUp();
            return;
        }
        s.demand();
    }

    @Override
    public void onWebSocketBinary(ByteBuffer payload, Callback callback) {
        try {
            if (!stdinOpen) {
                throw new SandboxException("stdin is closed (or was not asked for): no more input is taken");
            }
            byte[] bytes = new byte[payload.remaining()];
            payload.get(bytes);
            ex.stdin().write(bytes);
            ex.stdin().flush();
            callback.succeed();
            demand();
        } catch (IOException | RuntimeException e) {
            callback.fail(e);
            refuse(e);
        }
    }

    @Override
    public void onWebSocketText(String message) {
        try {
            stdinOpen = ExecRelay.apply(Json.MAPPER.readValue(message, ExecInput.class), ex, stdinOpen);
            demand();
        } catch (IOException | RuntimeException e) {
            refuse(e);
        }
    }

    @Override
    public void onWebSocketClose(int statusCode, String reason) {
        hangUp();
    }

    @Override
    public void onWebSocketError(Throwable cause) {
        hangUp();
    }

    private void demand() {
        Session s = socket;
        if (s != null) {
            s.demand();
        }
    }

    /** A message the relay cannot act on ends the command, said in an error event. */
    private void refuse(Exception e) {
        String kind = e instanceof SandboxException || e instanceof JacksonException ? "INVALID" : "FAILED";
        StreamedExec.kill(ex);
        finish(ExecEvent.failed(new ApiError("a message ended the command: " + e.getMessage(), kind)));
    }

    /** Waits for the command, then says how it ended and closes. */
    private void awaitExit() {
        try {
            ExitStatus st = ex.await();
            finish(ExecEvent.exit(st));
        } catch (IOException e) {
            StreamedExec.kill(ex);
            finish(ExecEvent.failed(new ApiError(String.valueOf(e.getMessage()), "FAILED")));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            hangUp();
        }
    }

    private boolean finished;

    private synchronized void finish(ExecEvent last) {
        if (finished) {
            return;
        }
        finished = true;
        Session s = socket;
        try {
            if (s != null && s.isOpen()) {
                sendText(last);
                s.close(StatusCode.NORMAL, last.type(), Callback.NOOP);
            }
        } catch (IOException e) {
            // The client went away meanwhile.
        } finally {
            session.close();
        }
    }

    /** The client is gone (or never came): the command is killed, the guest session closed. */
    private void hangUp() {
        if (!ex.isDone()) {
            StreamedExec.kill(ex);
        }
        synchronized (this) {
            finished = true;
        }
        // Output waiting for a socket that never opened now fails instead of waiting forever.
        opened.countDown();
        session.close();
    }

    private void sendBinary(ByteBuffer msg) throws IOException {
        awaitOpen();
        Session s = socket;
        if (s == null || !s.isOpen()) {
            throw new IOException("the WebSocket is closed");
        }
        Callback.Completable done = new Callback.Completable();
        s.sendBinary(msg, done);
        complete(done);
    }

    private void sendText(ExecEvent e) throws IOException {
        Session s = socket;
        if (s == null) {
            throw new IOException("the WebSocket is not open");
        }
        Callback.Completable done = new Callback.Completable();
        s.sendText(Json.MAPPER.writeValueAsString(e), done);
        complete(done);
    }

    private void awaitOpen() throws IOException {
        try {
            opened.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static void complete(Callback.Completable done) throws IOException {
        try {
            done.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new IOException("sending on the WebSocket failed: " + cause.getMessage(), cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }
}
