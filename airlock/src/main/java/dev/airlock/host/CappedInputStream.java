package dev.airlock.host;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Passes bytes on until there are more than a limit of them, then fails: for data a sandbox or a
 * client sends (an upload, a guest's pack). The failure is an IOException, so whatever reads the
 * stream into a sandbox (a file write) is cancelled, not left half done.
 */
public final class CappedInputStream extends FilterInputStream {
    private final long limit;
    private final String message;
    private long read;

    /** {@code message} says what went past the limit, e.g. "the upload is larger than the sandbox's disk". */
    public CappedInputStream(InputStream in, long limit, String message) {
        super(in);
        this.limit = limit;
        this.message = message;
    }

    @Override
    public int read() throws IOException {
        int b = in.read();
        if (b >= 0) {
            charge(1);
        }
        return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = in.read(b, off, len);
        if (n > 0) {
            charge(n);
        }
        return n;
    }

    /** Reads through what it skips: a skip on the source would pass bytes by uncounted. */
    @Override
    public long skip(long n) throws IOException {
        byte[] buf = new byte[8192];
        long left = n;
        while (left > 0) {
            int r = read(buf, 0, (int) Math.min(buf.length, left));
            if (r < 0) {
                break;
            }
            left -= r;
        }
        return n - left;
    }

    /** Whether {@code e} or one of its causes is a passed limit (a file write wraps what its input threw). */
    public static boolean limitPassed(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof LimitExceededException) {
                return true;
            }
        }
        return false;
    }

    private void charge(long n) throws IOException {
        read += n;
        if (read > limit) {
            throw new LimitExceededException(message);
        }
    }

    /** The limit was passed. */
    public static final class LimitExceededException extends IOException {
        private static final long serialVersionUID = 1L;

        LimitExceededException(String message) {
            super(message);
        }
    }
}
