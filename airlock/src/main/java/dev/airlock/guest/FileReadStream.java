package dev.airlock.guest;

import java.io.IOException;
import java.io.OutputStream;

/** A FILE_READ stream; the calling thread is its consumer. */
final class FileReadStream extends GuestStream {
    private final String path;
    private final InboundBuffer inbound;

    FileReadStream(GuestChannel channel, int id, String path) {
        super(channel, id);
        this.path = path;
        this.inbound = new InboundBuffer(id);
    }

    @Override
    String describe() {
        return "file read stream " + Integer.toUnsignedString(id) + " (" + path + ")";
    }

    @Override
    void onFrame(Frame frame) throws ProtocolException {
        switch (frame.type()) {
            case DATA -> inbound.offer(FrameType.DATA, frame.payload());
            case END -> {
                long total = frame.buffer().getLong();
                if (total < 0) {
                    throw new ProtocolException("END on " + describe() + " reports a negative size");
                }
                channel.unregister(this);
                inbound.end(total);
            }
            case ERROR -> {
                channel.unregister(this);
                inbound.end(GuestException.fromPayload(frame.payload()));
            }
            default -> throw unexpected(frame);
        }
    }

    @Override
    void fail(IOException cause) {
        inbound.fail(cause);
    }

    /**
     * Copies the file to {@code out}; returns its size. More than {@code maxBytes} fails with a
     * {@link GuestLimitException} once the cap is passed (nothing beyond it is written).
     */
    long copyTo(OutputStream out, long maxBytes) throws IOException, InterruptedException {
        long written = 0;
        boolean ended = false;
        try {
            while (true) {
                InboundBuffer.Item item = inbound.take();
                if (item instanceof InboundBuffer.Chunk chunk) {
                    if (chunk.bytes().length > maxBytes - written) {
                        throw GuestLimitException.size("reading " + path, maxBytes);
                    }
                    out.write(chunk.bytes());
                    written += chunk.bytes().length;
                    returnCredit(inbound, chunk.bytes().length);
                } else if (item instanceof InboundBuffer.End end) {
                    ended = true;
                    if (end.outcome() instanceof GuestException error) {
                        throw error;
                    }
                    long total = (Long) end.outcome();
                    if (total != written) {
                        throw channel.abort(new ProtocolException(
                                "END on " + describe() + " reports " + total + " bytes but " + written + " arrived"));
                    }
                    return written;
                }
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            if (!ended) {
                channel.cancel(this, GuestException.ECANCELED, "the host stopped reading");
            }
            throw e;
        }
    }
}
