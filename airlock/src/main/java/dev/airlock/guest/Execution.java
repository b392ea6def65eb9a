package dev.airlock.guest;

import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/** A process started by {@link GuestChannel#exec}; its output is copied to the sinks given there. */
public sealed interface Execution permits ExecStream {
    /** The process id inside the guest. */
    int pid();

    /**
     * The process's stdin; closing it sends end-of-file. Each write becomes at least one frame, so
     * wrap it in a buffer for small writes. Writes block while the agent's window is used up.
     *
     * @throws IllegalStateException if the spec did not ask for stdin
     */
    OutputStream stdin();

    /**
     * Sends a signal to the process group.
     *
     * @return false if the process had already exited, so nothing was sent
     */
    boolean signal(int signal) throws IOException;

    /** Resizes the pseudo-terminal. @throws IllegalStateException if the process has no tty */
    void resize(int rows, int cols) throws IOException;

    /**
     * Waits for the process to exit and for all its output to reach the sinks.
     *
     * @throws GuestException if the agent reported an error on the stream after the start
     * @throws GuestChannelClosedException if the session ended first
     * @throws IOException if writing to a sink failed (the output is incomplete)
     */
    ExitStatus await() throws IOException, InterruptedException;

    /** Like {@link #await()}, giving up after {@code timeout}; the process keeps running. */
    ExitStatus await(Duration timeout) throws IOException, InterruptedException, TimeoutException;

    boolean isDone();
}
