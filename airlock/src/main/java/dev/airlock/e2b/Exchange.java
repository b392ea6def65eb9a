package dev.airlock.e2b;

import dev.airlock.http.ExchangeCompletion;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/** One HTTP request and its answer, with the helpers every E2B route uses. */
final class Exchange {
    /** JSON request bodies are small (a sandbox spec, an RPC message). */
    static final int MAX_JSON = 1 << 20;

    final Request request;
    final Response response;
    private final Callback callback;
    private @Nullable Fields query;
    private final ExchangeCompletion completion;
    private boolean answered;

    Exchange(Request request, Response response, Callback callback) {
        this.request = request;
        this.response = response;
        this.callback = callback;
        this.completion = new ExchangeCompletion(response, callback);
    }

    String method() {
        return request.getMethod();
    }

    String path() {
        return Request.getPathInContext(request);
    }

    @Nullable
    String header(String name) {
        return request.getHeaders().get(name);
    }

    @Nullable
    String query(String name) {
        if (query == null) {
            query = Request.extractQueryParameters(request);
        }
        return query.getValue(name);
    }

    List<String> queryValues(String name) {
        if (query == null) {
            query = Request.extractQueryParameters(request);
        }
        List<String> values = query.getValues(name);
        return values == null ? List.of() : values;
    }

    InputStream body() {
        return Content.Source.asInputStream(request);
    }

    /** The JSON body; an empty body is an empty object, for routes whose fields are all optional. */
    JsonNode json() throws IOException {
        byte[] bytes;
        try (InputStream in = body()) {
            bytes = in.readNBytes(MAX_JSON + 1);
        }
        if (bytes.length > MAX_JSON) {
            throw new E2bException(413, "the request body is larger than " + (MAX_JSON >> 10) + " KiB");
        }
        if (bytes.length == 0) {
            return Json.MAPPER.createObjectNode();
        }
        try {
            JsonNode node = Json.MAPPER.readTree(bytes);
            if (node == null || !node.isObject()) {
                throw E2bException.badRequest("the request body must be a JSON object");
            }
            return node;
        } catch (JacksonException e) {
            throw E2bException.badRequest("the request body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    boolean answered() {
        return answered;
    }

    void json(int status, @Nullable Object body) {
        answered = true;
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        Content.Sink.write(response, true, Json.MAPPER.writeValueAsString(body), callback);
        completion.handedToJetty();
    }

    void empty(int status) {
        answered = true;
        response.setStatus(status);
        Content.Sink.write(response, true, "", callback);
        completion.handedToJetty();
    }

    /** E2B's error body: {@code {"code": STATUS, "message": ...}}. */
    void error(int status, String message) {
        json(status, new ErrorBody(status, message));
    }

    record ErrorBody(int code, String message) {}

    /** Commits the status and starts a streamed body; closing it completes the exchange. */
    OutputStream stream(int status, String contentType) {
        answered = true;
        return completion.stream(status, contentType);
    }

    /** Ends the exchange once: well, or with the failure that cut a streamed answer short. */
    void complete(@Nullable Throwable failure) {
        completion.complete(failure);
    }
}
