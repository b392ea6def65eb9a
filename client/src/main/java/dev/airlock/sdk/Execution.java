package dev.airlock.sdk;

import dev.airlock.sdk.http.DaemonHttp;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;

/**
 * A command running in a sandbox, streamed: its output goes to the {@link OutputHandler} as it
 * comes, its stdin and signals go from here. One HTTP exchange ({@code POST .../exec/stream},
 * JSON lines both ways) carries it; closing this before the command ends hangs up, and the
 * daemon kills the command.
 */
public final class Execution implements AutoCloseable {
    /** The stdin bytes per message (base64 makes a line a third longer). */
    private static final int STDIN_CHUNK = 48 << 10;
    /** How long a failed write waits for the exit that explains it. */
    private static final Duration ENDED_WAIT = Duration.ofSeconds(5);

    private final DaemonHttp.Exchange exchange;
    private final int pid;
    private final CompletableFuture<ExitStatus> exit = new CompletableFuture<>();
    private final OutputStream stdin = new StdinStream();
    private boolean stdinClosed;

    private Execution(DaemonHttp.Exchange exchange, int pid) {
        this.exchange = exchange;
        this.pid = pid;
    }

    static Execution start(
            Airlock airlock, String sandboxPath, Command command, int @Nullable [] tty, OutputHandler handler)
            throws IOException {
        Map<String, Object> start = new LinkedHashMap<>();
        start.put("cmd", command.cmd());
        if (command.env() != null) {
            start.put("env", command.env());
        }
        if (command.cwd() != null) {
            start.put("cwd", command.cwd());
        }
        if (command.user() != null) {
            start.put("user", command.user());
        }
        if (command.timeoutMs() != null) {
            start.put("timeoutMs", command.timeoutMs());
        }
        start.put("stdin", true);
        if (tty != null) {
            start.put("tty", Map.of("rows", tty[0], "cols", tty[1]));
        }
        byte[] first = (Airlock.JSON.writeValueAsString(start) + "\n").getBytes(StandardCharsets.UTF_8);
        DaemonHttp.Exchange ex = airlock.http().open("POST", sandboxPath + "/exec/stream", "application/jsonl", first);
        DaemonHttp.Response r = ex.response();
        if (r.status() != 200) {
            try (r) {
                Sandbox.closeQuietly(ex.requestBody());
                throw Airlock.error(r.status(), r.readAll(1 << 20));
            }
        }
        BufferedReader lines = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
        String line = lines.readLine();
        JsonNode started = line == null ? null : Airlock.JSON.readTree(line);
        if (started == null || !"started".equals(started.path("type").asString(""))) {
            r.close();
            throw new IOException("the daemon's exec answer does not start with 'started': " + line);
        }
        Execution e = new Execution(ex, started.path("pid").asInt());
        Thread.ofVirtual().name("airlock-exec-" + e.pid).start(() -> e.read(lines, handler));
        return e;
    }

    private void read(BufferedReader lines, OutputHandler handler) {
        try (lines) {
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode e = Airlock.JSON.readTree(line);
                switch (e.path("type").asString("")) {
                    case "stdout" ->
                        handler.stdout(Base64.getDecoder().decode(e.path("data").asString("")));
                    case "stderr" ->
                        handler.stderr(Base64.getDecoder().decode(e.path("data").asString("")));
                    case "exit" -> {
                        exit.complete(new ExitStatus(
                                e.path("exitCode").asInt(),
                                e.path("signal").asInt(),
                                e.path("timedOut").asBoolean(),
                                e.path("oomKilled").asBoolean()));
                        return;
                    }
                    case "error" -> {
                        JsonNode err = e.path("error");
                        exit.completeExceptionally(new AirlockException(
                                err.path("kind").asString("FAILED"),
                                200,
                                err.path("error").asString("the command failed")));
                        return;
                    }
                    default -> {
                        // an event of a newer daemon: nothing to do with it
                    }
                }
            }
            exit.completeExceptionally(new AirlockException("FAILED", 0, "the daemon ended the exec without its exit"));
        } catch (IOException | RuntimeException e) {
            exit.completeExceptionally(
                    new AirlockException("FAILED", 0, "the exec's stream broke: " + e.getMessage(), e));
        } finally {
            Sandbox.closeQuietly(exchange.requestBody());
        }
    }

    /** The command's pid inside the sandbox. */
    public int pid() {
        return pid;
    }

    /** The command's stdin; closing it (or {@link #closeStdin()}) sends end-of-file. */
    public OutputStream stdin() {
        return stdin;
    }

    /** Sends end-of-file to the command's stdin. */
    public void closeStdin() throws IOException {
        synchronized (this) {
            if (stdinClosed) {
                return;
            }
            stdinClosed = true;
        }
        sendUnlessEnded(Map.of("eof", true));
    }

    /** Sends a signal to the command's process group: a name ({@code TERM}, {@code INT}) or a number. */
    public void signal(String signal) throws IOException {
        sendUnlessEnded(Map.of("signal", signal));
    }

    /** Resizes the command's terminal (a command started on one). */
    public void resize(int rows, int cols) throws IOException {
        sendUnlessEnded(Map.of("resize", Map.of("rows", rows, "cols", cols)));
    }

    /** Waits for the command to end; all its output has reached the handler by then. */
    public ExitStatus await() throws IOException {
        try {
            return exit.get();
        } catch (ExecutionException e) {
            throw rethrow(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for command " + pid, e);
        }
    }

    /** Like {@link #await()}, giving up after {@code timeout} (the command keeps running). */
    public ExitStatus await(Duration timeout) throws IOException, TimeoutException {
        try {
            return exit.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            throw rethrow(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for command " + pid, e);
        }
    }

    public boolean isDone() {
        return exit.isDone();
    }

    /** Ends the exchange; a command still running is killed (a hang-up). */
    @Override
    public void close() {
        try {
            exchange.response().close();
        } catch (IOException e) {
            // Already closed.
        }
        exit.completeExceptionally(new AirlockException("FAILED", 0, "the execution was closed"));
    }

    private static RuntimeException rethrow(ExecutionException e) {
        return e.getCause() instanceof RuntimeException r
                ? r
                : new AirlockException("FAILED", 0, String.valueOf(e.getMessage()), e);
    }

    private synchronized void send(Map<String, Object> message) throws IOException {
        OutputStream body = exchange.requestBody();
        body.write((Airlock.JSON.writeValueAsString(message) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Sends a message that means nothing once the command has ended (eof, a signal, a resize):
     * a quick command may end, and the exchange with it, before its caller gets to send it.
     */
    private void sendUnlessEnded(Map<String, Object> message) throws IOException {
        try {
            send(message);
        } catch (IOException e) {
            if (!ended()) {
                throw e;
            }
        }
    }

    /** Writes stdin, dropping what a command that has already ended will never read. */
    void writeStdinUnlessEnded(byte[] bytes) throws IOException {
        try {
            stdin.write(bytes);
        } catch (IOException e) {
            if (!ended()) {
                throw e;
            }
        }
    }

    /**
     * Whether the command has ended, after a failed write: the daemon closes the exchange once
     * the command has ended, and its exit may still be on its way to the reader.
     */
    private boolean ended() {
        try {
            exit.get(ENDED_WAIT.toNanos(), TimeUnit.NANOSECONDS);
            return true;
        } catch (ExecutionException e) {
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return exit.isDone();
        }
    }

    /** Stdin as JSON lines of base64. */
    private final class StdinStream extends OutputStream {
        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            for (int at = off; at < off + len; at += STDIN_CHUNK) {
                int n = Math.min(STDIN_CHUNK, off + len - at);
                send(Map.of("stdin", Base64.getEncoder().encodeToString(Arrays.copyOfRange(b, at, at + n))));
            }
        }

        @Override
        public void close() throws IOException {
            closeStdin();
        }
    }
}
