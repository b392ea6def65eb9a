package dev.airlock.sdk.http;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;

/** A chunked body (RFC 9112, section 7.1), decoded; sizes and lines read with bounds. */
final class ChunkedInput extends InputStream {
    private final ChannelInput in;
    private final int maxTrailers;
    private long left;
    private boolean done;

    ChunkedInput(ChannelInput in, int maxTrailers) {
        this.in = in;
        this.maxTrailers = maxTrailers;
    }

    private boolean next() throws IOException {
        if (done) {
            return false;
        }
        if (left > 0) {
            return true;
        }
        String size = in.line(1024);
        int semi = size.indexOf(';');
        try {
            left = Long.parseLong((semi >= 0 ? size.substring(0, semi) : size).strip(), 16);
        } catch (NumberFormatException e) {
            throw new IOException("bad chunk size from the daemon: '" + size + "'", e);
        }
        if (left < 0) {
            throw new IOException("bad chunk size from the daemon: '" + size + "'");
        }
        if (left == 0) {
            // Trailers (none are used), up to the empty line that ends the body.
            while (!in.line(maxTrailers).isEmpty()) {
                // ignored
            }
            done = true;
            return false;
        }
        return true;
    }

    private void endOfChunk() throws IOException {
        if (left == 0 && !in.line(16).isEmpty()) {
            throw new IOException("a chunk from the daemon does not end with CRLF");
        }
    }

    @Override
    public int read() throws IOException {
        if (!next()) {
            return -1;
        }
        int c = in.read();
        if (c < 0) {
            throw new EOFException("the daemon closed the connection mid-chunk");
        }
        left--;
        endOfChunk();
        return c;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        if (!next()) {
            return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, left));
        if (n < 0) {
            throw new EOFException("the daemon closed the connection mid-chunk");
        }
        left -= n;
        endOfChunk();
        return n;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
