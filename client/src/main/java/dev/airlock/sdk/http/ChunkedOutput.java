package dev.airlock.sdk.http;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * A chunked request body: one chunk per write. {@link #finish()} sends the last chunk and leaves
 * the connection open for the answer; closing the response's body closes the connection.
 */
final class ChunkedOutput extends OutputStream {
    private static final byte[] LAST_CHUNK = "0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1);

    private final SocketChannel ch;
    private boolean finished;

    ChunkedOutput(SocketChannel ch) {
        this.ch = ch;
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        if (finished) {
            throw new IOException("the request body is already complete");
        }
        if (len == 0) {
            return;
        }
        byte[] size = (Integer.toHexString(len) + "\r\n").getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer chunk = ByteBuffer.allocate(size.length + len + 2);
        chunk.put(size).put(b, off, len).put((byte) '\r').put((byte) '\n').flip();
        DaemonHttp.writeFully(ch, chunk);
    }

    /** Ends the body; the connection stays open for the answer. */
    synchronized void finish() throws IOException {
        if (finished) {
            return;
        }
        finished = true;
        DaemonHttp.writeFully(ch, ByteBuffer.wrap(LAST_CHUNK));
    }

    /** Ends the body if it can still be ended; the answer may still be read. */
    @Override
    public void close() {
        try {
            finish();
        } catch (IOException e) {
            // The daemon already ended the exchange: nothing left to tell it.
        }
    }
}
