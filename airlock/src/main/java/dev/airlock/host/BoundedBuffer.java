package dev.airlock.host;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Keeps the first {@code limit} bytes written to it and only counts the rest: for a guest's
 * stderr or a script's answer that the host shows in a message or parses, which a hostile guest
 * could otherwise make as large as the host's memory. Never fails, so the command whose output it
 * takes is not stopped by it (a deadline or a {@link CappedOutputStream} is for that).
 */
public final class BoundedBuffer extends OutputStream {
    private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
    private final int limit;
    private long dropped;

    public BoundedBuffer(int limit) {
        this.limit = limit;
    }

    @Override
    public synchronized void write(int b) {
        if (kept.size() < limit) {
            kept.write(b);
        } else {
            dropped++;
        }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        int take = Math.min(len, limit - kept.size());
        kept.write(b, off, take);
        dropped += len - take;
    }

    /** The bytes kept. */
    public synchronized byte[] toByteArray() {
        return kept.toByteArray();
    }

    /** Bytes written beyond the limit. */
    public synchronized long dropped() {
        return dropped;
    }

    /** The text kept (UTF-8, malformed bytes replaced), with a note of how much was dropped. */
    public synchronized String text() {
        String s = kept.toString(StandardCharsets.UTF_8);
        return dropped == 0 ? s : s + "... (" + dropped + " more bytes not kept)";
    }
}
