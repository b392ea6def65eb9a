package dev.airlock.sdk.http;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The daemon's server-sent events ({@code GET /v1/events}): a thread of its own reads the
 * stream, decodes the {@code data:} of each event of one name into a bounded queue, and the
 * caller takes them with {@link #next(Duration)}. A reader that falls {@code limit} events
 * behind loses the stream (it ends) rather than letting memory grow; so does an event larger
 * than {@code maxEvent} bytes. The stream also ends when the daemon closes it or sends an
 * event that does not decode.
 *
 * @param <T> what an event's data decodes to
 */
public final class EventStreamReader<T> implements AutoCloseable {
    private final DaemonHttp.Response response;
    private final String eventName;
    private final Function<String, T> decode;
    private final int maxEvent;
    private final LinkedBlockingQueue<T> queue;
    private volatile boolean open = true;

    /**
     * Starts reading {@code response}'s body, which this reader owns and closes.
     *
     * @param decode turns an event's data (its {@code data:} lines joined) into a {@code T}; a
     *     runtime exception from it ends the stream
     */
    public EventStreamReader(
            DaemonHttp.Response response, String eventName, Function<String, T> decode, int limit, int maxEvent) {
        this.response = response;
        this.eventName = eventName;
        this.decode = decode;
        this.maxEvent = maxEvent;
        this.queue = new LinkedBlockingQueue<>(limit);
        Thread.ofVirtual().name("airlock-events").start(this::read);
    }

    private void read() {
        InputStream in = new BufferedInputStream(response.body());
        try {
            String event = null;
            StringBuilder data = new StringBuilder();
            for (String line; open && (line = line(in)) != null; ) {
                if (line.isEmpty()) {
                    if (eventName.equals(event) && !data.isEmpty() && !queue.offer(decode.apply(data.toString()))) {
                        return; // the taker fell too far behind
                    }
                    event = null;
                    data.setLength(0);
                } else if (line.startsWith("event:")) {
                    event = line.substring(6).strip();
                } else if (line.startsWith("data:")) {
                    data.append(line.substring(5).strip());
                    if (data.length() > maxEvent) {
                        return;
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // The stream ended: closed by this side, the daemon went away, or an event did not decode.
        } finally {
            // Ended before the connection closes: whoever sees it closed sees the stream ended too.
            open = false;
            close();
        }
    }

    /** One line without its LF (or CRLF), decoded as UTF-8; null at the end of the stream. */
    private @Nullable String line(InputStream in) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        for (int c; (c = in.read()) != '\n'; ) {
            if (c < 0) {
                return line.size() == 0 ? null : line.toString(StandardCharsets.UTF_8);
            }
            if (line.size() > maxEvent) {
                throw new IOException("an event line longer than " + maxEvent + " bytes");
            }
            line.write(c);
        }
        byte[] b = line.toByteArray();
        int len = b.length > 0 && b[b.length - 1] == '\r' ? b.length - 1 : b.length;
        return new String(b, 0, len, StandardCharsets.UTF_8);
    }

    /** The next event, waiting up to {@code wait}; null when none came in that time or the stream ended. */
    public @Nullable T next(Duration wait) throws InterruptedException {
        T e = queue.poll();
        if (e != null || !open) {
            return e;
        }
        return queue.poll(wait.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Whether more events may come: the stream is open, or some are still queued. */
    public boolean isOpen() {
        return open || !queue.isEmpty();
    }

    /** Ends the stream and closes its connection; events already queued are still handed out. */
    @Override
    public void close() {
        open = false;
        try {
            response.close();
        } catch (IOException e) {
            // Already closed.
        }
    }
}
