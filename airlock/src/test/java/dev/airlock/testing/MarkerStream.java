package dev.airlock.testing;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * An output sink that lets a test wait until a command has printed a marker, so a test knows a
 * process in a sandbox reached a point without sleeping and hoping.
 */
public final class MarkerStream extends OutputStream {
    private final byte[] marker;
    private final CountDownLatch seen = new CountDownLatch(1);
    private int matched;

    public MarkerStream(String marker) {
        this.marker = marker.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public synchronized void write(int b) {
        if (seen.getCount() == 0) {
            return;
        }
        matched = (byte) b == marker[matched] ? matched + 1 : ((byte) b == marker[0] ? 1 : 0);
        if (matched == marker.length) {
            seen.countDown();
        }
    }

    /** Whether the marker appeared within {@code timeout}. */
    public boolean await(Duration timeout) throws InterruptedException {
        return seen.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }
}
