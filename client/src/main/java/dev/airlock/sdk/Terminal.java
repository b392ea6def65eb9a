package dev.airlock.sdk;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * A pseudo-terminal session in a sandbox: what the program writes to the terminal comes out of
 * {@link #output()}, what is written to {@link #input()} is typed into it. Read the output: a
 * terminal nobody reads holds its program back. Closing it hangs up (the program is killed).
 */
public final class Terminal implements AutoCloseable {
    private final Execution execution;
    private final PipedInputStream output;

    private Terminal(Execution execution, PipedInputStream output) {
        this.execution = execution;
        this.output = output;
    }

    static Terminal open(Airlock airlock, String sandboxPath, Command command, int rows, int cols) throws IOException {
        PipedInputStream output = new PipedInputStream(256 << 10);
        PipedOutputStream sink = new PipedOutputStream(output);
        OutputHandler handler = new OutputHandler() {
            @Override
            public void stdout(byte[] bytes) {
                try {
                    sink.write(bytes);
                    sink.flush();
                } catch (IOException e) {
                    // The reader closed the output: the session's bytes have nowhere to go.
                }
            }

            @Override
            public void stderr(byte[] bytes) {
                stdout(bytes);
            }
        };
        Execution ex = Execution.start(airlock, sandboxPath, command, new int[] {rows, cols}, handler);
        Thread.ofVirtual().start(() -> {
            try {
                ex.await();
            } catch (IOException | RuntimeException e) {
                // said by exitStatus()
            } finally {
                Sandbox.closeQuietly(sink);
            }
        });
        return new Terminal(ex, output);
    }

    /** What the terminal shows, as bytes; ends when the program ends. */
    public InputStream output() {
        return output;
    }

    /** Keys typed into the terminal. */
    public OutputStream input() {
        return execution.stdin();
    }

    public void resize(int rows, int cols) throws IOException {
        execution.resize(rows, cols);
    }

    /** Sends a signal to the program's process group ({@code INT}, {@code HUP}, ...). */
    public void signal(String signal) throws IOException {
        execution.signal(signal);
    }

    /** Waits for the program to end. */
    public ExitStatus await() throws IOException {
        return execution.await();
    }

    public ExitStatus await(Duration timeout) throws IOException, TimeoutException {
        return execution.await(timeout);
    }

    @Override
    public void close() {
        execution.close();
        try {
            output.close();
        } catch (IOException e) {
            // Already closed.
        }
    }
}
