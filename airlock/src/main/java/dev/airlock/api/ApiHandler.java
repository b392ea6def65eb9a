package dev.airlock.api;

import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.image.ImageException;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxEngine;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.vmm.Accel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.json.JsonMapper;

/**
 * The HTTP/JSON API, version 1. Resources are sandboxes, addressed by name or id; verbs that are
 * not CRUD are sub-resources ({@code POST .../start}). Errors are {@code {"error", "kind"}} with
 * 400 (bad input), 404 (no such sandbox), 409 (state conflict) or 500 (host or VMM failure).
 */
final class ApiHandler extends Handler.Abstract {
    static final JsonMapper JSON = JsonMapper.builder().build();
    private static final int MAX_EXEC_OUTPUT = 16 << 20;

    private final Daemon daemon;
    private final SandboxEngine engine;

    ApiHandler(Daemon daemon) {
        this.daemon = daemon;
        this.engine = daemon.engine();
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        String path = request.getHttpURI().getPath();
        String method = request.getMethod();
        try {
            List<String> p = List.of(path.replaceAll("^/+|/+$", "").split("/"));
            if (p.isEmpty() || !p.getFirst().equals("v1")) {
                throw new SandboxException(
                        SandboxException.Kind.NOT_FOUND, "no such API path " + path + "; the API is under /v1");
            }
            Object result = route(method, p.subList(1, p.size()), request);
            if (result instanceof String text) {
                response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/plain; charset=utf-8");
                Content.Sink.write(response, true, text, callback);
            } else {
                respond(response, callback, method.equals("POST") && p.size() == 2 ? 201 : 200, result);
            }
        } catch (SandboxException e) {
            int status = switch (e.kind()) {
                case INVALID -> 400;
                case NOT_FOUND -> 404;
                case CONFLICT -> 409;
                case FAILED -> 500;
            };
            respond(
                    response,
                    callback,
                    status,
                    new ApiTypes.Error(String.valueOf(e.getMessage()), e.kind().name()));
        } catch (ImageException | IllegalArgumentException | JacksonException e) {
            respond(response, callback, 400, new ApiTypes.Error(String.valueOf(e.getMessage()), "INVALID"));
        } catch (IOException | RuntimeException e) {
            Daemon.log(method + " " + path + " failed: " + e);
            String why = e.getMessage() != null ? e.getMessage() : e.toString();
            respond(response, callback, 500, new ApiTypes.Error(why, "FAILED"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            respond(response, callback, 500, new ApiTypes.Error("interrupted", "FAILED"));
        }
        return true;
    }

    private Object route(String method, List<String> p, Request request) throws IOException, InterruptedException {
        String key = method + " " + (p.isEmpty() ? "" : p.getFirst())
                + (p.size() > 2 ? " " + p.get(2) : p.size() == 2 ? " *" : "");
        return switch (key) {
            case "GET health" ->
                new ApiTypes.Health("1", ProcessHandle.current().pid(), daemon.dataDir(), Daemon.build());
            case "GET sandboxes" -> engine.list();
            case "POST sandboxes" -> create(JSON.readValue(body(request), ApiTypes.CreateRequest.class));
            case "GET sandboxes *" -> engine.inspect(p.get(1));
            case "DELETE sandboxes *" -> {
                Sandbox s = engine.inspect(p.get(1));
                boolean force = "true".equals(query(request).getValue("force"));
                if (force || s.state() != dev.airlock.sandbox.SandboxState.RUNNING) {
                    daemon.dropMux(s);
                }
                Sandbox removed = engine.remove(s.id(), force);
                daemon.forgetNetwork(removed);
                yield removed;
            }
            case "POST sandboxes start" -> daemon.attach(engine.start(p.get(1)));
            case "POST sandboxes stop" -> {
                Sandbox s = engine.inspect(p.get(1));
                String t = query(request).getValue("timeout");
                daemon.dropMux(s);
                yield engine.stop(s.id(), Duration.ofSeconds(t == null ? 10 : Long.parseLong(t)));
            }
            case "POST sandboxes kill" -> {
                Sandbox s = engine.inspect(p.get(1));
                daemon.dropMux(s);
                yield engine.kill(s.id());
            }
            case "POST sandboxes pause" -> {
                Sandbox s = engine.inspect(p.get(1));
                daemon.dropMux(s);
                yield engine.pause(s.id());
            }
            case "POST sandboxes resume" -> daemon.attach(engine.resume(p.get(1)));
            case "POST sandboxes fork" -> fork(p.get(1), JSON.readValue(body(request), ApiTypes.ForkRequest.class));
            case "GET sandboxes stats" -> engine.stats(p.get(1));
            case "GET sandboxes logs" -> {
                Path log = engine.consoleLog(p.get(1));
                yield Files.exists(log) ? Files.readString(log, StandardCharsets.ISO_8859_1) : "";
            }
            case "GET sandboxes agent" ->
                new ApiTypes.AgentEndpoint(daemon.useMux(p.get(1)).socket().toString());
            case "GET sandboxes network" ->
                SandboxNetwork.load(engine.store().dir(engine.inspect(p.get(1)).id()));
            case "PUT sandboxes network" -> {
                Sandbox s = engine.inspect(p.get(1));
                ApiTypes.PolicyRequest r = JSON.readValue(body(request), ApiTypes.PolicyRequest.class);
                yield SandboxNetwork.updatePolicy(
                        engine.store().dir(s.id()),
                        daemon.network(s),
                        r.allowHosts() != null ? r.allowHosts() : List.of(),
                        r.addHosts() != null ? r.addHosts() : List.of());
            }
            case "POST sandboxes ports" -> {
                Sandbox s = engine.inspect(p.get(1));
                ApiTypes.PortRequest r = JSON.readValue(body(request), ApiTypes.PortRequest.class);
                yield SandboxNetwork.addPort(engine.store().dir(s.id()), daemon.network(s), r.publish());
            }
            case "DELETE sandboxes ports" -> {
                Sandbox s = engine.inspect(p.get(1));
                if (p.size() < 4) {
                    throw new SandboxException("DELETE .../ports/{hostPort}");
                }
                int port;
                try {
                    port = Integer.parseInt(p.get(3));
                } catch (NumberFormatException e) {
                    throw new SandboxException("'" + p.get(3) + "' is not a port number");
                }
                yield SandboxNetwork.removePort(engine.store().dir(s.id()), daemon.network(s), port);
            }
            case "GET sandboxes inference" -> {
                Sandbox s = engine.inspect(p.get(1));
                SandboxNetwork n = daemon.network(s);
                dev.airlock.net.InferenceBridge.Usage u = n == null ? null : n.inferenceUsage();
                Path dir = engine.store().dir(s.id());
                if (u == null && Files.exists(dir.resolve(SandboxNetwork.INFERENCE))) {
                    // Not running (or its network not up): the counts it kept.
                    u = dev.airlock.net.InferenceBridge.loadUsage(dir.resolve(SandboxNetwork.USAGE_FILE));
                }
                if (u == null) {
                    throw new SandboxException(
                            SandboxException.Kind.NOT_FOUND,
                            "sandbox '" + s.name() + "' has no inference bridge (create it with --inference URL)");
                }
                yield u;
            }
            case "GET sandboxes egress" -> {
                Path log = engine.store().dir(engine.inspect(p.get(1)).id()).resolve(dev.airlock.net.EgressLog.FILE);
                yield Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
            }
            case "POST sandboxes exec" -> exec(p.get(1), JSON.readValue(body(request), ApiTypes.ExecRequest.class));
            default ->
                throw new SandboxException(
                        SandboxException.Kind.NOT_FOUND, "no such API call: " + method + " /v1/" + String.join("/", p));
        };
    }

    private Sandbox create(ApiTypes.CreateRequest r) {
        Resources d = Resources.DEFAULT;
        Resources res = new Resources(
                r.cpus() != null ? r.cpus() : d.cpus(),
                r.memoryMiB() != null ? r.memoryMiB() : d.memoryMiB(),
                r.diskMiB() != null ? r.diskMiB() : d.diskMiB(),
                r.pids() != null ? r.pids() : d.pids(),
                r.timeoutSeconds() != null ? Duration.ofSeconds(r.timeoutSeconds()) : null);
        dev.airlock.net.NetworkSpec network = r.network() != null ? r.network() : dev.airlock.net.NetworkSpec.none();
        List<dev.airlock.net.Secret> secrets = r.secrets() != null ? r.secrets() : List.of();
        if (!secrets.isEmpty() && !network.proxy()) {
            throw new SandboxException("--secret needs --network proxy: the egress proxy puts the real value in");
        }
        Sandbox created = engine.create(new CreateOptions(
                r.name(),
                r.image() != null ? r.image() : "base",
                res,
                r.env() != null ? r.env() : Map.of(),
                r.workdir(),
                r.accel() != null ? Accel.parse(r.accel()) : null,
                r.layerTemplate() != null ? Path.of(r.layerTemplate()) : null,
                r.runtime() != null ? r.runtime() : "microvm",
                network.nat()));
        SandboxNetwork.save(engine.store().dir(created.id()), network);
        SandboxNetwork.saveSecrets(engine.store().dir(created.id()), secrets);
        SandboxNetwork.saveInference(engine.store().dir(created.id()), r.inference());
        return created;
    }

    private List<Sandbox> fork(String ref, ApiTypes.ForkRequest r) {
        Sandbox src = engine.inspect(ref);
        List<String> names = r.names() != null ? r.names() : List.of();
        int count = r.count() != null ? r.count() : names.isEmpty() ? 1 : names.size();
        if (!names.isEmpty() && names.size() != count) {
            throw new SandboxException("fork: " + count + " clones asked for but " + names.size() + " names given");
        }
        if (names.isEmpty()) {
            if (count < 1 || count > 64) {
                throw new SandboxException("fork: the number of clones must be 1 to 64, not " + count);
            }
            names = java.util.stream.IntStream.rangeClosed(1, count)
                    .mapToObj(i -> src.name() + "-" + i)
                    .toList();
        }
        List<Sandbox> clones = engine.fork(src.id(), names);
        for (Sandbox clone : clones) {
            // a clone has its source's egress policy, secrets and bridge; not its published
            // ports, whose host ports the source holds
            SandboxNetwork.copyForClone(
                    engine.store().dir(src.id()), engine.store().dir(clone.id()));
            daemon.attach(clone);
        }
        return clones;
    }

    private ApiTypes.ExecResult exec(String ref, ApiTypes.ExecRequest r) throws IOException, InterruptedException {
        GuestMux mux = daemon.useMux(ref);
        Sandbox s = engine.inspect(ref);
        if (r.cmd() == null || r.cmd().isEmpty()) {
            throw new SandboxException("exec needs a non-empty \"cmd\" array");
        }
        ExecSpec.Builder spec = ExecSpec.builder(r.cmd())
                .env(r.env() != null ? r.env() : Map.of())
                .cwd(r.cwd() != null ? r.cwd() : s.workdir())
                .user(r.user())
                .stdin(r.stdin() != null);
        if (r.timeoutMs() != null) {
            spec.timeout(Duration.ofMillis(r.timeoutMs()));
        }
        Capped out = new Capped();
        Capped err = new Capped();
        try (GuestChannel ch = GuestChannel.connect(mux.socket(), Duration.ofSeconds(30))) {
            Execution ex = ch.exec(spec.build(), out, err);
            if (r.stdin() != null) {
                try (OutputStream in = ex.stdin()) {
                    in.write(r.stdin().getBytes(StandardCharsets.UTF_8));
                }
            }
            ExitStatus st = ex.await();
            return new ApiTypes.ExecResult(
                    st.exitCode(),
                    st.signal(),
                    st.timedOut(),
                    st.oomKilled(),
                    out.text(),
                    err.text(),
                    out.truncated || err.truncated);
        } catch (CommandNotFoundException e) {
            throw new SandboxException(String.valueOf(e.getMessage()));
        }
    }

    /** Keeps the first 16 MiB of a stream and counts the rest as truncated. */
    private static final class Capped extends ByteArrayOutputStream {
        boolean truncated;

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            int room = MAX_EXEC_OUTPUT - size();
            if (len > room) {
                truncated = true;
            }
            super.write(b, off, Math.max(0, Math.min(len, room)));
        }

        String text() {
            return toString(StandardCharsets.UTF_8);
        }
    }

    private static String body(Request request) throws IOException {
        return Content.Source.asString(request, StandardCharsets.UTF_8);
    }

    private static Fields query(Request request) {
        return Request.extractQueryParameters(request);
    }

    private static void respond(Response response, Callback callback, int status, Object body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        Content.Sink.write(response, true, JSON.writeValueAsString(body) + "\n", callback);
    }
}
