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
import dev.airlock.wire.Protocol;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.concurrent.CountDownLatch;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;

/**
 * {@code POST /v1/sandboxes/{ref}/exec/stream}: one command with its streams over plain HTTP/1.1
 * chunked bodies, for clients such as curl. The answer is JSON lines ({@link ExecEvent}):
 * {@code started}, output as it comes, then {@code exit} (or {@code error}).
 *
 * <p>The request comes in one of two forms. With {@code Content-Type: application/jsonl} the body
 * is JSON lines: first the command ({@link ExecStart}), then {@link ExecInput} messages (stdin,
 * eof, signals, resize) for as long as the command runs. Otherwise the command is in the query
 * ({@code cmd} repeated, {@code env=NAME=VALUE}, {@code cwd}, {@code user}, {@code timeoutMs},
 * {@code tty=ROWSxCOLS}) and the body, raw, is the command's stdin.
 *
 * <p>Nothing is committed before the command has started, so an unknown sandbox, a bad request or
 * a missing program get an ordinary error answer. A client that goes away kills the command (as
 * a terminal's hang-up would); a malformed message ends it too, with an {@code error} event.
 */
final class StreamedExec {
    /** The longest JSON line a client may send (64 KiB of stdin is about 88 KiB of base64). */
    private static final int MAX_LINE = 1 << 20;

    private StreamedExec() {}

    static @Nullable Object run(HttpApi api, HttpApi.Call c) throws IOException, InterruptedException {
        String type = c.request.getHeaders().get(HttpHeader.CONTENT_TYPE);
        boolean control =
                type != null && (type.startsWith(Protocol.JSON_LINES) || type.startsWith("application/x-ndjson"));
        InputStream body = Content.Source.asInputStream(c.request);
        ExecStart start;
        boolean stdin;
        if (control) {
            byte[] first = line(body);
            if (first == null) {
                throw new SandboxException("the first JSON line must be the command, e.g. {\"cmd\":[\"ls\"]}");
            }
            start = Json.MAPPER.readValue(first, ExecStart.class);
            stdin = !Boolean.FALSE.equals(start.stdin());
        } else {
            start = ExecRelay.fromQuery(c, c.queryValues("cmd"), false);
            stdin = start.stdin() != null ? start.stdin() : c.hasBody();
        }
        ExecSpec spec = ExecRelay.spec(start, stdin);
        try (SandboxSession session = api.service().session(c.ref())) {
            Lines out = new Lines(c);
            Execution ex;
            try {
                ex = session.channel().exec(spec, out.sink("stdout"), out.sink("stderr"));
            } catch (CommandNotFoundException | CommandNotExecutableException e) {
                throw new SandboxException(String.valueOf(e.getMessage()));
            }
            try {
                out.begin(ex.pid());
            } catch (IOException e) {
                kill(ex);
                throw e;
            }
            Thread input = stdin
                    ? Thread.ofVirtual().name("exec-stream-input").start(() -> pump(control, body, ex, out))
                    : null;
            Thread keepAlive = Thread.ofVirtual().name("exec-stream-keepalive").start(() -> out.keepAlive(ex));
            ExitStatus status;
            try {
                status = ex.await();
            } catch (IOException e) {
                // A sink failed (the client went away) or the session broke.
                kill(ex);
                out.end(ExecEvent.failed(new ApiError(String.valueOf(e.getMessage()), "FAILED")));
                return null;
            } finally {
                keepAlive.interrupt();
                if (input != null) {
                    input.interrupt();
                }
            }
            out.end(ExecEvent.exit(status));
            return null;
        }
    }

    /** The client's side while the command runs: its messages or its raw stdin. */
    private static void pump(boolean control, InputStream body, Execution ex, Lines out) {
        try {
            if (!control) {
                try (OutputStream in = ex.stdin()) {
                    body.transferTo(in);
                }
                return;
            }
            boolean open = true;
            for (byte[] l; (l = line(body)) != null; ) {
                if (l.length == 0) {
                    continue;
                }
                open = ExecRelay.apply(Json.MAPPER.readValue(l, ExecInput.class), ex, open);
            }
            if (open) {
                ex.stdin().close();
            }
        } catch (SandboxException | JacksonException e) {
            kill(ex);
            out.fail(new ApiError("a malformed message ended the command: " + e.getMessage(), "INVALID"));
        } catch (IOException | RuntimeException e) {
            if (!ex.isDone()) {
                // The client went away (or the command ended while it sent): a hang-up.
                kill(ex);
            }
        }
    }

    static void kill(Execution ex) {
        try {
            ex.signal(9);
        } catch (IOException | RuntimeException e) {
            // Already gone.
        }
    }

    /** One line of the body without its newline, at most {@link #MAX_LINE} bytes; null at the end. */
    private static byte @Nullable [] line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int ch = in.read();
            if (ch < 0) {
                return b.size() == 0 ? null : b.toByteArray();
            }
            if (ch == '\n') {
                return b.toByteArray();
            }
            if (b.size() >= MAX_LINE) {
                throw new SandboxException("a JSON line is longer than " + (MAX_LINE >> 10) + " KiB");
            }
            b.write(ch);
        }
    }

    /** The answer: JSON lines, committed when the command has started. */
    private static final class Lines {
        private static final long KEEP_ALIVE_NANOS = 1_000_000_000L;
        private static final byte[] KEEP_ALIVE = {'\n'};

        private final HttpApi.Call call;
        private final CountDownLatch started = new CountDownLatch(1);
        private @Nullable OutputStream out;
        private boolean ended;
        private boolean flushPending;
        private long lastWrite = System.nanoTime();

        Lines(HttpApi.Call call) {
            this.call = call;
        }

        /** Commits the answer and says the command started; output waits for this. */
        void begin(int pid) throws IOException {
            synchronized (this) {
                out = call.stream(200, Protocol.JSON_LINES);
                call.response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
                write(ExecEvent.started(pid));
            }
            started.countDown();
        }

        OutputStream sink(String stream) {
            return new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    write(new byte[] {(byte) b}, 0, 1);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    try {
                        started.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted", e);
                    }
                    String data = Base64.getEncoder().encodeToString(java.util.Arrays.copyOfRange(b, off, off + len));
                    synchronized (Lines.this) {
                        Lines.this.writeOutput(ExecEvent.output(stream, data));
                    }
                }
            };
        }

        private void write(ExecEvent e) throws IOException {
            writeLine((Json.MAPPER.writeValueAsString(e) + "\n").getBytes(StandardCharsets.UTF_8));
        }

        /**
         * Output is not flushed line by line: a flush per chunk held streamed output to a tenth
         * of the mux socket's throughput. A flush follows on a thread of its own, which takes the
         * lock between two writes: a burst goes out in the server's full buffers, a lone line at
         * once.
         */
        private void writeOutput(ExecEvent e) throws IOException {
            OutputStream o = open();
            o.write((Json.MAPPER.writeValueAsString(e) + "\n").getBytes(StandardCharsets.UTF_8));
            lastWrite = System.nanoTime();
            if (!flushPending) {
                flushPending = true;
                Thread.ofVirtual().name("exec-output-flush").start(this::flushBurst);
            }
        }

        private synchronized void flushBurst() {
            flushPending = false;
            OutputStream o = out;
            if (o == null || ended) {
                return;
            }
            try {
                o.flush();
            } catch (IOException e) {
                // The client is gone: the next write fails and kills the command.
            }
        }

        private OutputStream open() throws IOException {
            OutputStream o = out;
            if (o == null || ended) {
                throw new IOException("the answer is not open");
            }
            return o;
        }

        private void writeLine(byte[] line) throws IOException {
            OutputStream o = open();
            o.write(line);
            o.flush();
            lastWrite = System.nanoTime();
        }

        /**
         * A blank line whenever the command has been quiet for {@link #KEEP_ALIVE_NANOS}: the only
         * way to learn that a client went away while nothing is read from it (its body is over)
         * and nothing is written to it (a quiet command). A write to a closed connection fails,
         * and the command is killed as on a hang-up. Clients skip blank lines.
         */
        void keepAlive(Execution ex) {
            try {
                while (!ex.isDone()) {
                    Thread.sleep(KEEP_ALIVE_NANOS / 1_000_000);
                    synchronized (this) {
                        if (ended) {
                            return;
                        }
                        if (System.nanoTime() - lastWrite >= KEEP_ALIVE_NANOS) {
                            writeLine(KEEP_ALIVE);
                        }
                    }
                }
            } catch (InterruptedException e) {
                // The command ended.
            } catch (IOException e) {
                kill(ex);
            }
        }

        /** The last event, once; closing the stream completes the request. */
        synchronized void end(ExecEvent last) {
            OutputStream o = out;
            if (ended || o == null) {
                return;
            }
            try {
                write(last);
            } catch (IOException e) {
                // The client is gone; the stream still has to end.
            }
            ended = true;
            try {
                o.close();
            } catch (IOException e) {
                // Same.
            }
        }

        void fail(ApiError error) {
            end(ExecEvent.failed(error));
        }
    }
}
