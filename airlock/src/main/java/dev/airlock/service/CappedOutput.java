package dev.airlock.service;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Keeps the first {@link ExecResult#MAX_OUTPUT} bytes of a stream and notes that there was more. */
final class CappedOutput extends ByteArrayOutputStream {
    private boolean truncated;

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        int room = ExecResult.MAX_OUTPUT - size();
        if (len > room) {
            truncated = true;
        }
        super.write(b, off, Math.max(0, Math.min(len, room)));
    }

    synchronized boolean truncated() {
        return truncated;
    }

    String text() {
        return toString(StandardCharsets.UTF_8);
    }
}
