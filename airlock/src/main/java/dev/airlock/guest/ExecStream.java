package dev.airlock.guest;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One exec stream. Output is copied to the caller's sinks by a pump thread of its own, so the
 * session's reader thread never waits for a sink.
 */
final class ExecStream extends GuestStream implements Execution {
    private final ExecSpec spec;
    private final OutputStream stdout;
    private final OutputStream stderr;
    private final InboundBuffer inbound;
    private final SendWindow stdinWindow;
    private final WindowedOutput stdin;
    private final CompletableFuture<Integer> started = new CompletableFuture<>();
    private final CompletableFuture<ExitStatus> exit = new CompletableFuture<>();
    // Set by the reader thread on the final frame; after it nothing may be sent on the stream.
    private volatile boolean finished;

    ExecStream(GuestChannel channel, int id, ExecSpec spec, OutputStream stdout, OutputStream stderr) {
        super(channel, id);
        this.spec = spec;
        this.stdout = stdout;
        this.stderr = stderr;
        this.inbound = new InboundBuffer(id);
        this.stdinWindow = new SendWindow(id);
        this.stdin =
                new WindowedOutput(channel, id, FrameType.STDIN, stdinWindow, () -> finished, "stdin of " + describe());
    }

    @Override
    String describe() {
        return "exec stream " + Integer.toUnsignedString(id) + " ("
                + spec.argv().getFirst() + ")";
    }

    @Override
    void onFrame(Frame frame) throws ProtocolException {
        switch (frame.type()) {
            case STARTED -> {
                if (started.isDone()) {
                    throw unexpected(frame);
                }
                started.complete(u32AsInt(frame.payload(), 0));
                channel.startThread("exec-" + Integer.toUnsignedString(id), this::pump);
            }
            case STDOUT, STDERR -> {
                if (!started.isDone()) {
                    throw new ProtocolException(frame.type().describe() + " before STARTED on " + describe());
                }
                if (frame.type() == FrameType.STDERR && spec.tty() != null) {
                    throw new ProtocolException("STDERR on " + describe() + ", which runs on a pty");
                }
                inbound.offer(frame.type(), frame.payload());
            }
            case AGENT_CREDIT -> stdinWindow.grant(u32(frame.payload()));
            case EXIT -> {
                if (!started.isDone()) {
                    throw new ProtocolException("EXIT before STARTED on " + describe());
                }
                ExitStatus status = ExitStatus.fromPayload(frame.payload());
                finish();
                inbound.end(status);
            }
            case ERROR -> {
                GuestException error = GuestException.fromPayload(frame.payload());
                finish();
                if (started.isDone()) {
                    inbound.end(error);
                } else {
                    GuestException startFailure = startFailure(error);
                    started.completeExceptionally(startFailure);
                    exit.completeExceptionally(startFailure);
                }
            }
            default -> throw unexpected(frame);
        }
    }

    private GuestException startFailure(GuestException error) {
        return switch (error.errno()) {
            case GuestException.ENOENT -> new CommandNotFoundException(error.agentMessage());
            case GuestException.EACCES -> new CommandNotExecutableException(error.agentMessage());
            default -> error;
        };
    }

    private void finish() {
        finished = true;
        channel.unregister(this);
        stdinWindow.close(new IOException("process " + spec.argv().getFirst() + " has exited; its stdin is closed"));
    }

    @Override
    void fail(IOException cause) {
        started.completeExceptionally(cause);
        exit.completeExceptionally(cause);
        inbound.fail(cause);
        stdinWindow.close(cause);
    }

    /** Blocks the exec caller until the process runs or could not be started. */
    void awaitStarted() throws IOException, InterruptedException {
        try {
            started.get();
        } catch (ExecutionException e) {
            throw GuestChannel.unwrap(e);
        }
    }

    private void pump() {
        IOException sinkFailure = null;
        try {
            while (true) {
                InboundBuffer.Item item = inbound.take();
                if (item instanceof InboundBuffer.Chunk chunk) {
                    if (sinkFailure == null) {
                        try {
                            OutputStream sink = chunk.type() == FrameType.STDERR ? stderr : stdout;
                            sink.write(chunk.bytes());
                            sink.flush();
                        } catch (IOException e) {
                            sinkFailure = e;
                        }
                    }
                    returnCredit(inbound, chunk.bytes().length);
                } else if (item instanceof InboundBuffer.End end) {
                    complete(end.outcome(), sinkFailure);
                    return;
                }
            }
        } catch (IOException e) {
            exit.completeExceptionally(e);
        } catch (InterruptedException e) {
            exit.completeExceptionally(new InterruptedIOException("output pump interrupted"));
        }
    }

    private void complete(Object outcome, @org.jspecify.annotations.Nullable IOException sinkFailure) {
        if (outcome instanceof GuestException error) {
            exit.completeExceptionally(error);
        } else if (sinkFailure != null) {
            exit.completeExceptionally(
                    new IOException("copying the output of " + spec.argv().getFirst() + " failed", sinkFailure));
        } else {
            exit.complete((ExitStatus) outcome);
        }
    }

    @Override
    public int pid() {
        return started.resultNow();
    }

    @Override
    public OutputStream stdin() {
        if (!spec.stdin()) {
            throw new IllegalStateException("the exec spec did not ask for stdin");
        }
        return stdin;
    }

    @Override
    public boolean signal(int signal) throws IOException {
        if (finished) {
            return false;
        }
        channel.send(Frame.of(
                FrameType.SIGNAL, id, ByteBuffer.allocate(4).putInt(signal).array()));
        return true;
    }

    @Override
    public void resize(int rows, int cols) throws IOException {
        if (spec.tty() == null) {
            throw new IllegalStateException(describe() + " has no tty");
        }
        TerminalSize size = new TerminalSize(rows, cols);
        if (!finished) {
            channel.send(Frame.of(FrameType.RESIZE, id, size.toPayload()));
        }
    }

    @Override
    public ExitStatus await() throws IOException, InterruptedException {
        try {
            return exit.get();
        } catch (ExecutionException e) {
            throw GuestChannel.unwrap(e);
        }
    }

    @Override
    public ExitStatus await(Duration timeout) throws IOException, InterruptedException, TimeoutException {
        try {
            return exit.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            throw GuestChannel.unwrap(e);
        }
    }

    @Override
    public boolean isDone() {
        return exit.isDone();
    }

    @Override
    public String toString() {
        return "Execution[" + describe() + (exit.isDone() ? ", done" : "") + "]";
    }
}
