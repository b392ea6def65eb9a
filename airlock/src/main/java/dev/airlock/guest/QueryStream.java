package dev.airlock.guest;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/** A request answered by one RESULT (STAT, LIST), decoded on the reader thread. */
final class QueryStream<T> extends GuestStream {
    /** Turns RESULT fields into the answer; a ProtocolException ends the session. */
    interface Decoder<T> {
        T decode(List<Tlv> fields) throws ProtocolException;
    }

    private final String what;
    private final Decoder<T> decoder;
    private final CompletableFuture<T> result = new CompletableFuture<>();

    QueryStream(GuestChannel channel, int id, String what, Decoder<T> decoder) {
        super(channel, id);
        this.what = what;
        this.decoder = decoder;
    }

    @Override
    String describe() {
        return what + " stream " + Integer.toUnsignedString(id);
    }

    @Override
    void onFrame(Frame frame) throws ProtocolException {
        switch (frame.type()) {
            case RESULT -> {
                T answer = decoder.decode(Tlv.parse(frame.payload()));
                channel.unregister(this);
                result.complete(answer);
            }
            case ERROR -> {
                channel.unregister(this);
                result.completeExceptionally(GuestException.fromPayload(frame.payload()));
            }
            default -> throw unexpected(frame);
        }
    }

    @Override
    void fail(IOException cause) {
        result.completeExceptionally(cause);
    }

    T await() throws IOException, InterruptedException {
        try {
            return result.get();
        } catch (ExecutionException e) {
            throw GuestChannel.unwrap(e);
        }
    }
}
