package dev.airlock.sdk.http;

import java.io.IOException;
import java.io.InputStream;

/** A body of known length (Content-Length). */
final class LimitedInput extends InputStream {
    private final ChannelInput in;
    private long left;

    LimitedInput(ChannelInput in, long length) {
        this.in = in;
        this.left = length;
    }

    @Override
    public int read() throws IOException {
        if (left <= 0) {
            return -1;
        }
        int c = in.read();
        if (c >= 0) {
            left--;
        }
        return c;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (left <= 0) {
            return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, left));
        if (n > 0) {
            left -= n;
        }
        return n;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
