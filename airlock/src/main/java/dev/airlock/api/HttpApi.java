package dev.airlock.api;

import dev.airlock.guest.GuestException;
import dev.airlock.http.ExchangeCompletion;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ExecRequest;
import dev.airlock.service.ForkSpec;
import dev.airlock.service.FrameSessions;
import dev.airlock.service.GuestErrors;
import dev.airlock.service.ImageBuildSpec;
import dev.airlock.service.ImageInfo;
import dev.airlock.service.ImagePullSpec;
import dev.airlock.service.LogKind;
import dev.airlock.service.PolicyChange;
import dev.airlock.service.ProgressListener;
import dev.airlock.service.PullSpec;
import dev.airlock.service.SandboxService;
import dev.airlock.service.WorkspaceSpec;
import dev.airlock.wire.ApiError;
import dev.airlock.wire.Build;
import dev.airlock.wire.Health;
import dev.airlock.wire.ImageEvent;
import dev.airlock.wire.Json;
import dev.airlock.wire.PortRequest;
import dev.airlock.wire.Protocol;
import dev.airlock.wire.WorkspaceEvent;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;

/**
 * The HTTP/JSON API, version 1: a thin layer that parses a request, calls the
 * {@link SandboxService} and maps the answer (or the error's kind) to HTTP. Every route is in
 * {@link #ROUTES}, which docs/openapi.yaml describes and a test keeps in step with it.
 * Sandboxes are addressed by name or id; verbs that are not CRUD are sub-resources
 * ({@code POST .../start}). Errors are {@link ApiError}s with the status their kind maps to.
 */
public final class HttpApi extends Handler.Abstract {
    /** The longest request body the API reads (a create with many secrets is a few KB). */
    private static final int MAX_BODY = 1 << 20;
    /** The most of a log one request returns: its end. */
    private static final int MAX_LOG = 4 << 20;

    /** Every route the daemon serves; docs/openapi.yaml describes each of them. */
    public static final List<Route> ROUTES = table();

    private final SandboxService service;
    private final FrameSessions sessions;
    private final Supplier<Health> health;

    /** {@code health}: what {@code GET /v1/health} says now (the daemon learns its TCP ports once it serves). */
    public HttpApi(SandboxService service, FrameSessions sessions, Supplier<Health> health) {
        this.service = service;
        this.sessions = sessions;
        this.health = health;
    }

    SandboxService service() {
        return service;
    }

    /** One route: a method, a path template with {@code {name}} segments, and what it does. */
    public record Route(String method, String template, Action action) {
        List<String> segments() {
            return List.of(template.substring(1).split("/"));
        }
    }

    /** What a route does: an answer to send as JSON (or text), or null when it answered itself. */
    @FunctionalInterface
    public interface Action {
        @Nullable
        Object run(HttpApi api, Call call) throws IOException, InterruptedException;
    }

    private static List<Route> table() {
        List<Route> r = new ArrayList<>();
        r.add(new Route("GET", "/v1/health", (a, c) -> a.health.get()));
        r.add(new Route("GET", "/v1/sandboxes", (a, c) -> a.service.list()));
        r.add(new Route("POST", "/v1/sandboxes", (a, c) -> c.created(a.service.create(c.body(CreateSpec.class)))));
        r.add(new Route("POST", "/v1/workspaces", HttpApi::workspace));
        // Image names hold '/' and ':' (registry references): the name is a query parameter.
        r.add(new Route("DELETE", "/v1/images", (a, c) -> a.service.removeImage(c.requiredQuery("name"))));
        r.add(new Route("POST", "/v1/images/build", (a, c) -> {
            ImageBuildSpec spec = c.body(ImageBuildSpec.class);
            c.required(spec.context(), "context");
            return imageWork(c, spec, a.service::buildImage);
        }));
        r.add(new Route("POST", "/v1/images/pull", (a, c) -> {
            ImagePullSpec spec = c.body(ImagePullSpec.class);
            c.required(spec.reference(), "reference");
            return imageWork(c, spec, a.service::pullImage);
        }));
        r.add(new Route("GET", "/v1/sandboxes/{ref}", (a, c) -> a.service.inspect(c.ref())));
        r.add(new Route(
                "DELETE", "/v1/sandboxes/{ref}", (a, c) -> a.service.remove(c.ref(), "true".equals(c.query("force")))));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/start", (a, c) -> a.service.start(c.ref())));
        r.add(new Route(
                "POST",
                "/v1/sandboxes/{ref}/stop",
                (a, c) -> a.service.stop(c.ref(), Duration.ofSeconds(c.number("timeout", 10)))));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/kill", (a, c) -> a.service.kill(c.ref())));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/pause", (a, c) -> a.service.pause(c.ref())));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/resume", (a, c) -> a.service.resume(c.ref())));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/fork", (a, c) -> a.service.fork(c.ref(), c.body(ForkSpec.class))));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/stats", (a, c) -> a.service.stats(c.ref())));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/logs", (a, c) -> a.service.logs(c.ref(), logKind(c), MAX_LOG)));
        r.add(new Route(
                "POST", "/v1/sandboxes/{ref}/exec", (a, c) -> a.service.exec(c.ref(), c.body(ExecRequest.class))));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/exec/stream", StreamedExec::run));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/exec/ws", (a, c) -> WebSocketExec.run(a, c, false)));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/terminal", (a, c) -> WebSocketExec.run(a, c, true)));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/session", HttpApi::session));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/files", FileRoutes::download));
        r.add(new Route("PUT", "/v1/sandboxes/{ref}/files", FileRoutes::upload));
        r.add(new Route("DELETE", "/v1/sandboxes/{ref}/files", FileRoutes::remove));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/files/stat", FileRoutes::stat));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/files/list", FileRoutes::list));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/files/mkdir", FileRoutes::mkdir));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/files/move", FileRoutes::move));
        r.add(new Route("GET", "/v1/events", EventRoute::run));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/network", (a, c) -> a.service.network(c.ref())));
        r.add(new Route(
                "PATCH",
                "/v1/sandboxes/{ref}/network",
                (a, c) -> a.service.changePolicy(c.ref(), c.body(PolicyChange.class))));
        r.add(new Route(
                "POST",
                "/v1/sandboxes/{ref}/ports",
                (a, c) -> a.service.publish(
                        c.ref(), c.required(c.body(PortRequest.class).publish(), "publish"))));
        r.add(new Route(
                "DELETE",
                "/v1/sandboxes/{ref}/ports/{port}",
                (a, c) -> a.service.unpublish(c.ref(), hostPort(c.pathNumber("port")))));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/inference", (a, c) -> a.service.inferenceUsage(c.ref())));
        r.add(new Route("GET", "/v1/sandboxes/{ref}/diff", HttpApi::diff));
        r.add(new Route("POST", "/v1/sandboxes/{ref}/pull", (a, c) -> a.service.pull(c.ref(), c.body(PullSpec.class))));
        return List.copyOf(r);
    }

    /** A host port from a path: a larger number once wrapped round to another port in the answer. */
    private static int hostPort(long port) {
        if (port < 1 || port > 65535) {
            throw new SandboxException(port + " is not a port: use 1 to 65535");
        }
        return (int) port;
    }

    private static LogKind logKind(Call c) {
        String kind = c.query("kind");
        try {
            return kind == null ? LogKind.CONSOLE : LogKind.valueOf(kind.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new SandboxException("unknown log kind '" + kind + "': use console or egress");
        }
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        Call call = null;
        try {
            String build = request.getHeaders().get(Protocol.BUILD_HEADER);
            if (build != null && !build.equals(Build.id())) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT,
                        Protocol.STALE_DAEMON + ": this daemon runs build " + Build.id() + ", the client " + build);
            }
            call = route(request, response, callback);
            Object result = call.route.action().run(this, call);
            if (!call.answered) {
                call.answer(result);
            }
        } catch (SandboxException e) {
            fail(response, callback, call, e.kind().httpStatus(), error(e));
        } catch (GuestException e) {
            SandboxException se = GuestErrors.of(e);
            fail(response, callback, call, se.kind().httpStatus(), error(se));
        } catch (IllegalArgumentException | JacksonException e) {
            fail(response, callback, call, 400, new ApiError(String.valueOf(e.getMessage()), "INVALID"));
        } catch (IOException | RuntimeException e) {
            String why = e.getMessage() != null ? e.getMessage() : e.toString();
            fail(response, callback, call, 500, new ApiError(why, "FAILED"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail(response, callback, call, 500, new ApiError("interrupted", "FAILED"));
        }
        return true;
    }

    private static ApiError error(SandboxException e) {
        String message = String.valueOf(e.getMessage());
        if (message.startsWith(Protocol.STALE_DAEMON + ": ")) {
            return new ApiError(message.substring(Protocol.STALE_DAEMON.length() + 2), Protocol.STALE_DAEMON);
        }
        return new ApiError(message, e.kind().name());
    }

    private static void fail(Response response, Callback callback, @Nullable Call call, int status, ApiError err) {
        if (call != null && call.answered) {
            // Already streaming: nothing can be said in HTTP any more; the stream just ends.
            call.complete(new IOException(err.error()));
            return;
        }
        json(response, callback, status, err);
    }

    private Call route(Request request, Response response, Callback callback) {
        String path = request.getHttpURI().getPath();
        List<String> segments = new ArrayList<>();
        for (String s : path.split("/", -1)) {
            if (!s.isEmpty()) {
                segments.add(URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8));
            }
        }
        boolean pathKnown = false;
        for (Route r : ROUTES) {
            List<String> t = r.segments();
            if (t.size() != segments.size()) {
                continue;
            }
            Map<String, String> params = new java.util.HashMap<>();
            boolean match = true;
            for (int i = 0; i < t.size() && match; i++) {
                if (t.get(i).startsWith("{")) {
                    params.put(t.get(i).substring(1, t.get(i).length() - 1), segments.get(i));
                } else {
                    match = t.get(i).equals(segments.get(i));
                }
            }
            if (match) {
                pathKnown = true;
                if (r.method().equals(request.getMethod())) {
                    return new Call(r, params, request, response, callback);
                }
            }
        }
        throw SandboxException.notFound((pathKnown ? "no such API call: " : "no such API path: ") + request.getMethod()
                + " " + path + "; the API is described in docs/openapi.yaml");
    }

    /** {@code POST /v1/workspaces}: progress as JSON lines while the workspace is made, then the sandbox. */
    private static @Nullable Object workspace(HttpApi a, Call c) throws IOException {
        WorkspaceSpec spec = c.body(WorkspaceSpec.class);
        c.required(spec.repo(), "repo");
        c.required(spec.sandbox(), "sandbox");
        return progress(
                c,
                new ProgressEvents<>(
                        WorkspaceEvent::step, WorkspaceEvent::output, WorkspaceEvent::done, WorkspaceEvent::failed),
                listener -> a.service.createWorkspace(spec, listener));
    }

    /** An image build or pull: its progress as JSON lines while it works, then the image or the error. */
    private static <S> @Nullable Object imageWork(
            Call c, S spec, java.util.function.BiFunction<S, ProgressListener, ImageInfo> work) throws IOException {
        return progress(
                c,
                new ProgressEvents<>(ImageEvent::step, ImageEvent::output, ImageEvent::done, ImageEvent::failed),
                listener -> work.apply(spec, listener));
    }

    /** How one long operation's progress, result and error are written as events of type {@code E}. */
    private record ProgressEvents<R, E>(
            Function<String, E> step, Function<String, E> output, Function<R, E> done, Function<ApiError, E> failed) {}

    /**
     * A long operation answered as JSON lines: its steps and (base64) output while it works, then
     * its result or its error, mapped by {@link #error} as every other route's.
     */
    private static <R, E> @Nullable Object progress(
            Call c, ProgressEvents<R, E> events, Function<ProgressListener, R> work) throws IOException {
        OutputStream out = c.stream(200, Protocol.JSON_LINES);
        Consumer<E> send = event -> {
            try {
                synchronized (out) {
                    out.write((Json.MAPPER.writeValueAsString(event) + "\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
            } catch (IOException e) {
                throw new UncheckedIOException("the client went away", e);
            }
        };
        try {
            send.accept(events.done().apply(work.apply(new ProgressListener() {
                @Override
                public void step(String message) {
                    send.accept(events.step().apply(message));
                }

                @Override
                public void output(byte[] bytes) {
                    send.accept(events.output().apply(Base64.getEncoder().encodeToString(bytes)));
                }
            })));
        } catch (SandboxException e) {
            send.accept(events.failed().apply(error(e)));
        } catch (RuntimeException e) {
            send.accept(events.failed().apply(new ApiError(String.valueOf(e.getMessage()), "FAILED")));
        }
        out.close();
        return null;
    }

    /**
     * {@code GET .../diff}: the workspace's git diff as text, streamed. The answer is committed at
     * the diff's first byte, not before: an error that comes first (a sandbox without a workspace)
     * is then an ordinary error answer, where a committed stream could only end in Jetty's HTML page.
     */
    private static @Nullable Object diff(HttpApi a, Call c) throws IOException {
        String ref = c.ref();
        a.service.inspect(ref);
        OutputStream out = new OutputStream() {
            private @Nullable OutputStream answer;

            private OutputStream answer() {
                OutputStream o = answer;
                if (o == null) {
                    o = c.stream(200, "text/plain; charset=utf-8");
                    answer = o;
                }
                return o;
            }

            @Override
            public void write(int b) throws IOException {
                answer().write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                answer().write(b, off, len);
            }

            @Override
            public void flush() throws IOException {
                if (answer != null) {
                    answer.flush();
                }
            }

            @Override
            public void close() throws IOException {
                answer().close();
            }
        };
        a.service.diff(ref, out);
        out.close();
        return null;
    }

    /**
     * {@code POST .../session}: a guest-protocol session carried in the request and response
     * bodies (chunked, both ways at once). The sandbox is checked before anything is committed,
     * so a wrong reference is an ordinary error answer.
     */
    private static @Nullable Object session(HttpApi a, Call c) throws IOException {
        FrameSessions.Opened opened = a.sessions.open(c.ref());
        OutputStream out = c.stream(200, Protocol.GUEST_FRAMES);
        out.write((Json.MAPPER.writeValueAsString(opened.sandbox()) + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        opened.serve(Content.Source.asInputStream(c.request), out);
        return null;
    }

    /** One request being served. */
    public static final class Call {
        final Route route;
        final Map<String, String> params;
        final Request request;
        final Response response;
        final Callback callback;
        boolean answered;
        private final ExchangeCompletion completion;
        int status = 200;
        private @Nullable Fields query;

        Call(Route route, Map<String, String> params, Request request, Response response, Callback callback) {
            this.route = route;
            this.params = params;
            this.request = request;
            this.response = response;
            this.callback = callback;
            this.completion = new ExchangeCompletion(response, callback);
        }

        String ref() {
            return param("ref");
        }

        String param(String name) {
            return String.valueOf(params.get(name));
        }

        long pathNumber(String name) {
            String v = String.valueOf(params.get(name));
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new SandboxException("'" + v + "' is not a number");
            }
        }

        @Nullable
        String query(String name) {
            Fields q = query;
            if (q == null) {
                q = Request.extractQueryParameters(request);
                query = q;
            }
            return q.getValue(name);
        }

        String requiredQuery(String name) {
            String v = query(name);
            if (v == null || v.isEmpty()) {
                throw new SandboxException(
                        route.method() + " " + route.template() + " needs the query parameter " + name);
            }
            return v;
        }

        /** Every value of a repeated query parameter, in order. */
        List<String> queryValues(String name) {
            query(name);
            Fields q = query;
            List<String> values = q == null ? null : q.getValues(name);
            return values == null ? List.of() : values;
        }

        /** A yes/no query parameter: {@code true}/{@code 1} or {@code false}/{@code 0}, absent is no. */
        boolean flag(String name) {
            String v = query(name);
            if (v == null || v.equals("false") || v.equals("0")) {
                return false;
            }
            if (v.equals("true") || v.equals("1") || v.isEmpty()) {
                return true;
            }
            throw new SandboxException("query parameter " + name + "='" + v + "' is not true or false");
        }

        /** Whether the request carries a body (a length above 0, or chunked). */
        boolean hasBody() {
            return request.getLength() > 0 || request.getHeaders().contains(HttpHeader.TRANSFER_ENCODING);
        }

        /** Answers 204 with no body. */
        void noContent() {
            answered = true;
            response.setStatus(204);
            callback.succeeded();
        }

        long number(String name, long fallback) {
            String v = query(name);
            if (v == null) {
                return fallback;
            }
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new SandboxException("query parameter " + name + "='" + v + "' is not a number");
            }
        }

        <T> T body(Class<T> type) throws IOException {
            try (InputStream in = Content.Source.asInputStream(request)) {
                byte[] bytes = in.readNBytes(MAX_BODY + 1);
                if (bytes.length > MAX_BODY) {
                    throw new SandboxException("the request body is larger than " + (MAX_BODY >> 10) + " KiB");
                }
                if (bytes.length == 0) {
                    throw new SandboxException(route.method() + " " + route.template() + " needs a JSON body");
                }
                T value;
                try {
                    value = Json.MAPPER.readValue(bytes, type);
                } catch (JacksonException e) {
                    throw JsonBodyError.of(route.method() + " " + route.template(), e);
                }
                if (value == null) {
                    throw new SandboxException(
                            route.method() + " " + route.template() + " needs a JSON object as its body, not null");
                }
                return value;
            }
        }

        /**
         * A field of the body the call cannot do without. A body may leave out what its record
         * declares non-null: Jackson fills in null, which would fail deep inside as a 500.
         */
        <T> T required(@Nullable T value, String field) {
            if (value == null || (value instanceof String text && text.isEmpty())) {
                throw new SandboxException(
                        route.method() + " " + route.template() + " needs the field \"" + field + "\" in its body");
            }
            return value;
        }

        /** Marks the answer as a creation (201). */
        Object created(Object value) {
            status = 201;
            return value;
        }

        void answer(@Nullable Object result) {
            answered = true;
            if (result instanceof String text) {
                response.setStatus(status);
                response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/plain; charset=utf-8");
                Content.Sink.write(response, true, text, callback);
            } else {
                json(response, callback, status, result);
            }
        }

        /** Commits the status and starts a streamed body; closing the stream completes the request. */
        OutputStream stream(int status, String contentType) {
            answered = true;
            return completion.stream(status, contentType);
        }

        /** Completes a streamed answer, once: well, or with the error that ended it. */
        void complete(@Nullable Throwable failure) {
            completion.complete(failure);
        }
    }

    private static void json(Response response, Callback callback, int status, @Nullable Object body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        Content.Sink.write(response, true, Json.MAPPER.writeValueAsString(body) + "\n", callback);
    }
}
