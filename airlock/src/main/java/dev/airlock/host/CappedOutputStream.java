package dev.airlock.host;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/** Passes bytes on until there are more than a limit of them, then fails: for data a sandbox sends. */
public final class CappedOutputStream extends FilterOutputStream {
    private final long limit;
    private final String what;
    private long written;

    /** {@code what} names the data in the error, e.g. "the sandbox's bundle". */
    public CappedOutputStream(OutputStream out, long limit, String what) {
        super(out);
        this.limit = limit;
        this.what = what;
    }

    @Override
    public void write(int b) throws IOException {
        charge(1);
        out.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        charge(len);
        out.write(b, off, len);
    }

    private void charge(long n) throws IOException {
        written += n;
        if (written > limit) {
            throw new LimitExceededException(what + " is larger than the limit of " + limit + " bytes");
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
