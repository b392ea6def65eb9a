package dev.airlock.guest;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.jspecify.annotations.Nullable;

/**
 * One ACCEPT or CONNECT stream: a guest loopback TCP connection. DATA with the EOF flag is the
 * guest's half-close, END the end of both halves, ERROR a reset. Flow control is the exec
 * streams': {@link InboundBuffer} one way, {@link SendWindow} the other.
 */
final class SocketStream extends GuestStream implements GuestSocket {
    private static final Object EOF = new Object();

    private final int port;
    private final InboundBuffer inbound;
    private final SendWindow window;
    private final CompletableFuture<Void> connected = new CompletableFuture<>();
    private final CompletableFuture<Void> ended = new CompletableFuture<>();
    private final Input input = new Input();
    private final WindowedOutput output;
    private volatile boolean finished;
    private boolean inboundEnded; // reader thread only

    SocketStream(GuestChannel channel, int id, int port) {
        super(channel, id);
        this.port = port;
        this.inbound = new InboundBuffer(id);
        this.window = new SendWindow(id);
        this.output = new WindowedOutput(
                channel, id, FrameType.SOCK_DATA, window, () -> finished, "the host half of " + describe());
    }

    @Override
    String describe() {
        return "socket stream " + Integer.toUnsignedString(id) + " (guest port " + port + ")";
    }

    @Override
    void onFrame(Frame frame) throws ProtocolException {
        switch (frame.type()) {
            case CONNECTED -> {
                if (connected.isDone()) {
                    throw unexpected(frame);
                }
                connected.complete(null);
            }
            case DATA -> {
                if (!connected.isDone() || inboundEnded) {
                    throw unexpected(frame);
                }
                inbound.offer(FrameType.DATA, frame.payload());
                if (frame.eof()) {
                    inboundEnded = true;
                    inbound.end(EOF);
                }
            }
            case AGENT_CREDIT -> window.grant(u32(frame.payload()));
            case END -> {
                if (!connected.isDone()) {
                    // No connection means nothing to end: the agent answers a failed one with ERROR.
                    // Accepting it would leave the caller of connect/accept waiting for CONNECTED.
                    throw unexpected(frame);
                }
                finish(new IOException("the connection to guest port " + port + " is closed"));
                if (!inboundEnded) {
                    inboundEnded = true;
                    inbound.end(EOF);
                }
            }
            case ERROR -> {
                GuestException error = GuestException.fromPayload(frame.payload());
                finish(error);
                if (!connected.isDone()) {
                    connected.completeExceptionally(error);
                } else if (!inboundEnded) {
                    inboundEnded = true;
                    inbound.end(error);
                }
            }
            default -> throw unexpected(frame);
        }
    }

    private void finish(IOException reason) {
        finished = true;
        channel.unregister(this);
        window.close(reason);
        ended.complete(null);
    }

    @Override
    void fail(IOException cause) {
        connected.completeExceptionally(cause);
        inbound.fail(cause);
        window.close(cause);
        ended.complete(null);
    }

    void awaitConnected() throws IOException, InterruptedException {
        try {
            connected.get();
        } catch (ExecutionException e) {
            throw GuestChannel.unwrap(e);
        }
    }

    @Override
    public InputStream input() {
        return input;
    }

    @Override
    public OutputStream output() {
        return output;
    }

    @Override
    public int port() {
        return port;
    }

    @Override
    public void close() {
        if (output.isClosed() && input.atEnd && !finished) {
            // Both halves are shut: the agent may still be writing our last bytes to the guest
            // socket and ends the stream (END) once they are out. Cancelling now would drop them.
            try {
                ended.get(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                // Reset below.
            }
        }
        IOException closedHere = new IOException("the connection to guest port " + port + " was closed by the host");
        if (!finished) {
            finished = true;
            channel.cancel(this, GuestException.ECANCELED, "connection closed by the host");
        }
        inbound.fail(closedHere);
        window.close(closedHere);
        connected.completeExceptionally(closedHere);
    }

    private final class Input extends InputStream {
        private byte @Nullable [] chunk;
        private int offset;
        private volatile boolean atEnd;

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            java.util.Objects.checkFromIndexSize(off, len, b.length);
            if (len == 0) {
                return 0;
            }
            byte[] current = chunk;
            while (current == null) {
                if (atEnd) {
                    return -1;
                }
                InboundBuffer.Item item;
                try {
                    item = inbound.take();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted while reading " + describe());
                }
                if (item instanceof InboundBuffer.Chunk c) {
                    current = c.bytes();
                    chunk = current;
                    offset = 0;
                } else if (item instanceof InboundBuffer.End end) {
                    atEnd = true;
                    if (end.outcome() instanceof IOException error) {
                        throw error;
                    }
                    return -1;
                }
            }
            int n = Math.min(len, current.length - offset);
            System.arraycopy(current, offset, b, off, n);
            offset += n;
            if (offset == current.length) {
                chunk = null;
                returnCredit(inbound, current.length);
            }
            return n;
        }
    }
}
