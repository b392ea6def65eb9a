package dev.airlock.sdk;

/**
 * Receives a streamed command's output as it comes, on a thread of the execution's own, in
 * order per stream. A handler that blocks holds the command back (flow control reaches the
 * sandbox), it never loses output.
 */
public interface OutputHandler {
    void stdout(byte[] bytes);

    void stderr(byte[] bytes);

    /** A handler that throws the output away. */
    static OutputHandler discard() {
        return new OutputHandler() {
            @Override
            public void stdout(byte[] bytes) {}

            @Override
            public void stderr(byte[] bytes) {}
        };
    }
}
