package dev.airlock.guest;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/** A FILE_WRITE stream; the calling thread feeds it. */
final class FileWriteStream extends GuestStream {
    private final String path;
    private final SendWindow window;
    private final CompletableFuture<Long> result = new CompletableFuture<>();

    FileWriteStream(GuestChannel channel, int id, String path) {
        super(channel, id);
        this.path = path;
        this.window = new SendWindow(id);
    }

    @Override
    String describe() {
        return "file write stream " + Integer.toUnsignedString(id) + " (" + path + ")";
    }

    @Override
    void onFrame(Frame frame) throws ProtocolException {
        switch (frame.type()) {
            case AGENT_CREDIT -> window.grant(u32(frame.payload()));
            case RESULT -> {
                long size = FileFields.size(Tlv.parse(frame.payload()), "RESULT on " + describe());
                channel.unregister(this);
                window.close(new IOException(describe() + " already has its RESULT"));
                result.complete(size);
            }
            case ERROR -> {
                GuestException error = GuestException.fromPayload(frame.payload());
                channel.unregister(this);
                window.close(error);
                result.completeExceptionally(error);
            }
            default -> throw unexpected(frame);
        }
    }

    @Override
    void fail(IOException cause) {
        window.close(cause);
        result.completeExceptionally(cause);
    }

    /** Sends all of {@code in} and waits for the agent to commit the file; returns its size. */
    long copyFrom(InputStream in) throws IOException, InterruptedException {
        byte[] buffer = new byte[Frame.MAX_PAYLOAD];
        while (true) {
            int granted;
            try {
                granted = window.acquire(buffer.length);
            } catch (InterruptedException e) {
                channel.cancel(this, GuestException.ECANCELED, "the host was interrupted");
                throw e;
            } catch (IOException e) {
                // An early ERROR (e.g. the directory is missing) closes the window: report it.
                throw awaitError(e);
            }
            int read;
            try {
                read = in.read(buffer, 0, granted);
            } catch (IOException e) {
                // The target stays intact: the agent renames its temporary file only on EOF.
                channel.cancel(this, GuestException.ECANCELED, "the host could not read the data");
                throw new IOException("reading the data for " + path + " failed; the guest file is unchanged", e);
            }
            if (read < 0) {
                window.release(granted);
                break;
            }
            window.release(granted - read);
            if (read > 0) {
                channel.send(Frame.of(FrameType.FILE_DATA, id, Arrays.copyOf(buffer, read)));
            }
        }
        channel.send(Frame.empty(FrameType.FILE_DATA, id, Frame.FLAG_EOF));
        try {
            return result.get();
        } catch (ExecutionException e) {
            throw GuestChannel.unwrap(e);
        }
    }

    private IOException awaitError(IOException windowClosed) throws InterruptedException {
        if (!result.isDone()) {
            return windowClosed;
        }
        try {
            result.get();
            return windowClosed;
        } catch (ExecutionException e) {
            return GuestChannel.unwrap(e);
        } catch (java.util.concurrent.CancellationException e) {
            return new InterruptedIOException("cancelled");
        }
    }
}
