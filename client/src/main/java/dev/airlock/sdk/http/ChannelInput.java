package dev.airlock.sdk.http;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * The socket read through a buffer of its own. Not {@code Channels.newInputStream}: on a socket
 * channel that one may hold the channel's blocking lock while it waits, which would stall a
 * writer on the same socket, and an exchange reads and writes at once.
 */
final class ChannelInput extends InputStream {
    private final SocketChannel ch;
    private final ByteBuffer buf = ByteBuffer.allocate(64 << 10).flip();

    ChannelInput(SocketChannel ch) {
        this.ch = ch;
    }

    private boolean fill() throws IOException {
        if (buf.hasRemaining()) {
            return true;
        }
        buf.clear();
        int n = ch.read(buf);
        buf.flip();
        return n > 0;
    }

    @Override
    public int read() throws IOException {
        return fill() ? buf.get() & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        if (!fill()) {
            return -1;
        }
        int n = Math.min(len, buf.remaining());
        buf.get(b, off, n);
        return n;
    }

    /** A CRLF-terminated line without its terminator; at most {@code max} bytes. */
    String line(int max) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        while (true) {
            int c = read();
            if (c < 0) {
                throw new EOFException("the daemon closed the connection mid-answer");
            }
            if (c == '\n') {
                byte[] b = line.toByteArray();
                int len = b.length > 0 && b[b.length - 1] == '\r' ? b.length - 1 : b.length;
                return new String(b, 0, len, StandardCharsets.ISO_8859_1);
            }
            if (line.size() >= max) {
                throw new IOException("a line of the daemon's answer is longer than " + max + " bytes");
            }
            line.write(c);
        }
    }

    /** Closes the connection, both ways. */
    @Override
    public void close() throws IOException {
        ch.close();
    }
}
