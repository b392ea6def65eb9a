package dev.airlock.sdk;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * A pseudo-terminal session in a sandbox: what the program writes to the terminal comes out of
 * {@link #output()}, what is written to {@link #input()} is typed into it. Read the output: a
 * terminal nobody reads holds its program back. Closing it hangs up (the program is killed).
 */
public final class Terminal implements AutoCloseable {
    private final Execution execution;
    private final Output output;

    private Terminal(Execution execution, Output output) {
        this.execution = execution;
        this.output = output;
    }

    static Terminal open(Airlock airlock, String sandboxPath, Command command, int rows, int cols) throws IOException {
        Output output = new Output(256 << 10);
        OutputHandler handler = new OutputHandler() {
            @Override
            public void stdout(byte[] bytes) {
                output.put(bytes);
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
                output.end();
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
        output.close();
    }

    /**
     * The terminal's bytes between the session's reader and the caller: a bounded buffer that
     * ends when the session does. (java.io's piped streams fail a read with "write end dead" once
     * the thread that last wrote has ended, before the end is marked.)
     */
    private static final class Output extends InputStream {
        private final byte[] ring;
        private int start;
        private int count;
        private boolean ended;
        private boolean closed;

        Output(int capacity) {
            this.ring = new byte[capacity];
        }

        synchronized void put(byte[] bytes) {
            for (int i = 0; i < bytes.length && !closed; ) {
                while (count == ring.length && !closed) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                int n = Math.min(bytes.length - i, ring.length - count);
                for (int k = 0; k < n; k++) {
                    ring[(start + count + k) % ring.length] = bytes[i + k];
                }
                count += n;
                i += n;
                notifyAll();
            }
        }

        synchronized void end() {
            ended = true;
            notifyAll();
        }

        @Override
        public synchronized int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public synchronized int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            while (count == 0 && !ended && !closed) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted while reading the terminal");
                }
            }
            if (count == 0) {
                return -1;
            }
            int n = Math.min(len, count);
            for (int k = 0; k < n; k++) {
                b[off + k] = ring[(start + k) % ring.length];
            }
            start = (start + n) % ring.length;
            count -= n;
            notifyAll();
            return n;
        }

        @Override
        public synchronized int available() {
            return count;
        }

        @Override
        public synchronized void close() {
            closed = true;
            count = 0;
            notifyAll();
        }
    }
}
