package dev.airlock.http;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.jspecify.annotations.Nullable;

/**
 * Completes one Jetty exchange once, however many paths try: a streamed answer's close (well, or
 * with the error it met), the error that cut the stream short, or a whole answer Jetty completes
 * itself. Jetty's callback must hear success or failure a single time.
 */
public final class ExchangeCompletion {
    private final Response response;
    private final Callback callback;
    private boolean completed;

    public ExchangeCompletion(Response response, Callback callback) {
        this.response = response;
        this.callback = callback;
    }

    /** Commits the status and starts a streamed body; closing the stream completes the exchange. */
    public OutputStream stream(int status, String contentType) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        OutputStream body = Content.Sink.asOutputStream(response);
        return new FilterOutputStream(body) {
            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                body.write(b, off, len);
            }

            @Override
            public void close() throws IOException {
                try {
                    body.close();
                    complete(null);
                } catch (IOException | RuntimeException e) {
                    complete(e);
                    throw e;
                }
            }
        };
    }

    /** Completes the exchange, once: well, or with the error that ended a streamed answer. */
    public synchronized void complete(@Nullable Throwable failure) {
        if (completed) {
            return;
        }
        completed = true;
        if (failure == null) {
            callback.succeeded();
        } else {
            callback.failed(failure);
        }
    }

    /** A whole answer was handed to Jetty with the callback, which Jetty completes: nothing more to do. */
    public synchronized void handedToJetty() {
        completed = true;
    }
}
