package dev.airlock.net;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * A TLS session over a pair of byte streams, for connections that are not sockets (a guest
 * connection is a stream of the agent session). Blocking, like a socket: one thread may read
 * while another writes, as the proxy's two copy directions do.
 */
final class StreamTls implements AutoCloseable {
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    private final SSLEngine engine;
    private final InputStream rawIn;
    private final OutputStream rawOut;
    private final Object readLock = new Object();
    private final Object writeLock = new Object();
    /** Ciphertext read and not yet unwrapped, ready for reading (position..limit). */
    private ByteBuffer netIn;
    /** Plaintext unwrapped and not yet consumed, ready for reading. */
    private ByteBuffer appIn;

    private ByteBuffer netOut;
    private boolean inboundDone;

    private final InputStream input = new InputStream() {
        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            return StreamTls.this.read(b, off, len);
        }
    };

    private final OutputStream output = new OutputStream() {
        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            StreamTls.this.write(ByteBuffer.wrap(b, off, len));
        }

        @Override
        public void close() throws IOException {
            closeOutbound();
        }
    };

    /**
     * @param alreadyRead bytes of the peer's first flight the caller has read off {@code rawIn}
     *     already (the ClientHello the proxy inspected)
     */
    StreamTls(SSLEngine engine, byte[] alreadyRead, InputStream rawIn, OutputStream rawOut) {
        this.engine = engine;
        this.rawIn = rawIn;
        this.rawOut = rawOut;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocate(Math.max(packet, alreadyRead.length));
        this.netIn.put(alreadyRead).flip();
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize());
        this.appIn.flip();
        this.netOut = ByteBuffer.allocate(packet);
    }

    /** Runs the handshake to its end; throws if the peer refuses it or goes away. */
    void handshake() throws IOException {
        engine.beginHandshake();
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_WRAP -> write(EMPTY);
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    synchronized (readLock) {
                        if (!unwrapOnce()) {
                            throw new EOFException("the peer closed the connection during the TLS handshake");
                        }
                    }
                }
                case NEED_TASK -> runTasks();
                case FINISHED, NOT_HANDSHAKING -> {
                    return;
                }
            }
        }
    }

    InputStream input() {
        return input;
    }

    OutputStream output() {
        return output;
    }

    private int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        synchronized (readLock) {
            while (!appIn.hasRemaining()) {
                if (inboundDone || !unwrapOnce()) {
                    return -1;
                }
                afterUnwrap();
            }
            int n = Math.min(len, appIn.remaining());
            appIn.get(b, off, n);
            return n;
        }
    }

    /** Post-handshake messages (a key update) may ask for an answer or a task. */
    private void afterUnwrap() throws IOException {
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_TASK -> runTasks();
                case NEED_WRAP -> write(EMPTY);
                default -> {
                    return;
                }
            }
        }
    }

    /** One unwrap, reading ciphertext as needed; false at the end of the inbound side. */
    private boolean unwrapOnce() throws IOException {
        while (true) {
            appIn.compact();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, appIn);
            } finally {
                appIn.flip();
            }
            switch (r.getStatus()) {
                case OK -> {
                    return true;
                }
                case CLOSED -> {
                    inboundDone = true;
                    return false;
                }
                case BUFFER_OVERFLOW -> {
                    ByteBuffer bigger = ByteBuffer.allocate(
                            appIn.remaining() + engine.getSession().getApplicationBufferSize());
                    bigger.put(appIn).flip();
                    appIn = bigger;
                }
                case BUFFER_UNDERFLOW -> {
                    if (!fill()) {
                        inboundDone = true;
                        try {
                            engine.closeInbound();
                        } catch (SSLException e) {
                            // The peer ended the stream without close_notify: a truncation, which
                            // HTTP's own framing detects; treat it as the end of the data.
                        }
                        return false;
                    }
                }
            }
        }
    }

    /** Reads more ciphertext into {@link #netIn}; false at end of stream. */
    private boolean fill() throws IOException {
        int packet = engine.getSession().getPacketBufferSize();
        if (netIn.capacity() - netIn.remaining() < packet) {
            ByteBuffer bigger = ByteBuffer.allocate(netIn.remaining() + packet);
            bigger.put(netIn).flip();
            netIn = bigger;
        }
        netIn.compact();
        try {
            int n = rawIn.read(netIn.array(), netIn.arrayOffset() + netIn.position(), netIn.remaining());
            if (n < 0) {
                return false;
            }
            netIn.position(netIn.position() + n);
            return true;
        } finally {
            netIn.flip();
        }
    }

    private void write(ByteBuffer src) throws IOException {
        synchronized (writeLock) {
            while (true) {
                netOut.clear();
                SSLEngineResult r = engine.wrap(src, netOut);
                if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                    netOut = ByteBuffer.allocate(
                            netOut.capacity() + engine.getSession().getPacketBufferSize());
                    continue;
                }
                netOut.flip();
                rawOut.write(netOut.array(), netOut.arrayOffset(), netOut.limit());
                if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                    runTasks();
                }
                if (!src.hasRemaining()) {
                    break;
                }
                if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    throw new IOException("the TLS session is closed");
                }
            }
            rawOut.flush();
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
    }

    /** Sends close_notify and ends the writing half of the raw stream. */
    private void closeOutbound() throws IOException {
        synchronized (writeLock) {
            if (engine.isOutboundDone()) {
                return;
            }
            engine.closeOutbound();
            for (int i = 0; i < 4 && !engine.isOutboundDone(); i++) {
                write(EMPTY);
            }
            rawOut.close();
        }
    }

    @Override
    public void close() {
        try {
            closeOutbound();
        } catch (IOException e) {
            // The peer is gone already.
        }
    }
}
