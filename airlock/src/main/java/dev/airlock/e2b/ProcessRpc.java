package dev.airlock.e2b;

import dev.airlock.guest.CommandNotExecutableException;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.TerminalSize;
import dev.airlock.service.SandboxSession;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * envd's {@code process.Process} service over one sandbox's guest session: Start (streamed
 * output and an end event), Connect, List, SendInput, StreamInput, SendSignal, CloseStdin and
 * Update (a terminal's size). A command's {@code timeoutMs} (the Start call's
 * {@code Connect-Timeout-Ms}) becomes the guest's timeout: the process group is killed when it
 * passes.
 */
final class ProcessRpc {
    private static final String PREFIX = "/process.Process/";

    private final E2bSandboxes sandboxes;

    ProcessRpc(E2bSandboxes sandboxes) {
        this.sandboxes = sandboxes;
    }

    static boolean handles(String path) {
        return path.startsWith(PREFIX);
    }

    void handle(Exchange ex, E2bSandbox sandbox, E2bUser user) throws IOException, InterruptedException {
        String method = ex.path().substring(PREFIX.length());
        ProcessTable table = sandboxes.processes(sandbox.sandboxId());
        switch (method) {
            case "Start" -> Rpc.serverStream(ex, request -> start(ex, sandbox, user, table, request));
            case "Connect" ->
                Rpc.serverStream(ex, request -> {
                    GuestProcess p = table.select(ConnectRpc.objectField(request, "process"));
                    stream(ex, p);
                });
            case "List" -> Rpc.unary(ex, request -> list(table));
            case "SendInput" ->
                Rpc.unary(ex, request -> {
                    GuestProcess p = table.select(ConnectRpc.objectField(request, "process"));
                    p.input(input(ConnectRpc.objectField(request, "input")));
                    return ConnectRpc.object();
                });
            case "StreamInput" -> streamInput(ex, table);
            case "SendSignal" ->
                Rpc.unary(ex, request -> {
                    GuestProcess p = table.select(ConnectRpc.objectField(request, "process"));
                    p.execution().signal(signal(request.get("signal")));
                    return ConnectRpc.object();
                });
            case "CloseStdin" ->
                Rpc.unary(ex, request -> {
                    table.select(ConnectRpc.objectField(request, "process")).closeInput();
                    return ConnectRpc.object();
                });
            case "Update" ->
                Rpc.unary(ex, request -> {
                    GuestProcess p = table.select(ConnectRpc.objectField(request, "process"));
                    JsonNode size = ConnectRpc.objectField(ConnectRpc.objectField(request, "pty"), "size");
                    if (!p.pty()) {
                        throw new E2bException(412, "the process has no terminal to resize");
                    }
                    p.execution().resize((int) ConnectRpc.number(size, "rows", 24), (int)
                            ConnectRpc.number(size, "cols", 80));
                    return ConnectRpc.object();
                });
            default -> throw new E2bException(501, "process.Process/" + method + " is not implemented");
        }
    }

    private void start(Exchange ex, E2bSandbox sandbox, E2bUser user, ProcessTable table, JsonNode request)
            throws IOException, InterruptedException {
        JsonNode process = ConnectRpc.objectField(request, "process");
        String cmd = ConnectRpc.requiredString(process, "cmd");
        List<String> argv = new ArrayList<>();
        argv.add(cmd);
        JsonNode args = process.get("args");
        if (args != null && !args.isNull()) {
            if (!args.isArray()) {
                throw E2bException.badRequest("field 'args' must be a list of strings");
            }
            for (JsonNode a : args) {
                if (!a.isString()) {
                    throw E2bException.badRequest("field 'args' must be a list of strings");
                }
                argv.add(a.stringValue());
            }
        }
        Map<String, String> envs = stringMap(process, "envs");
        String cwd = user.resolve(ConnectRpc.string(process, "cwd"));
        JsonNode ptyNode = request.get("pty");
        boolean pty = ptyNode != null && ptyNode.isObject();
        boolean stdin = ConnectRpc.bool(request, "stdin") || pty;
        ExecSpec.Builder spec = ExecSpec.builder(argv)
                .env(user.env())
                .env(envs)
                .cwd(cwd)
                .user(user.guestUser())
                .stdin(stdin);
        if (pty) {
            JsonNode size = ConnectRpc.objectField(ptyNode, "size");
            spec.tty(new TerminalSize(
                    (int) ConnectRpc.number(size, "rows", 24), (int) ConnectRpc.number(size, "cols", 80)));
        }
        Duration timeout = ConnectRpc.timeout(ex);
        if (timeout != null) {
            spec.timeout(timeout);
        }
        ObjectNode config = ConnectRpc.object().put("cmd", cmd);
        ArrayNode configArgs = config.putArray("args");
        argv.subList(1, argv.size()).forEach(configArgs::add);
        ObjectNode configEnvs = config.putObject("envs");
        envs.forEach(configEnvs::put);
        config.put("cwd", cwd);
        GuestProcess p = new GuestProcess(config, ConnectRpc.string(request, "tag"), pty, stdin);
        GuestProcess.Subscriber first = p.subscribe();
        SandboxSession session = sandboxes.session(sandbox.sandboxId());
        Execution execution;
        try {
            execution = session.channel().exec(spec.build(), p.sink(pty ? "pty" : "stdout"), p.sink("stderr"));
        } catch (CommandNotFoundException | CommandNotExecutableException e) {
            p.unsubscribe(first);
            throw E2bException.badRequest(String.valueOf(e.getMessage()));
        } catch (IllegalArgumentException e) {
            p.unsubscribe(first);
            throw E2bException.badRequest(String.valueOf(e.getMessage()));
        }
        p.started(execution);
        table.add(p);
        Thread.ofVirtual().name("e2b-wait-" + execution.pid()).start(() -> awaitEnd(table, p, execution));
        stream(ex, p, first);
    }

    private static void awaitEnd(ProcessTable table, GuestProcess p, Execution execution) {
        try {
            p.ended(execution.await(), null);
        } catch (IOException e) {
            p.ended(new ExitStatus(-1, 0, false, false), "lost the process: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            table.remove(p);
        }
    }

    private static void stream(Exchange ex, GuestProcess p) throws IOException, InterruptedException {
        stream(ex, p, p.subscribe());
    }

    /** Serves one stream of a process's events: start, data..., end; keepalives while quiet. */
    private static void stream(Exchange ex, GuestProcess p, GuestProcess.Subscriber events)
            throws IOException, InterruptedException {
        Duration keepalive = ConnectRpc.keepalive(ex);
        OutputStream out = ex.stream(200, ConnectRpc.STREAM_TYPE);
        try {
            ObjectNode start = ConnectRpc.object();
            start.putObject("event").putObject("start").put("pid", p.pid());
            ConnectRpc.writeMessage(out, start);
            while (true) {
                JsonNode event = events.poll(keepalive.toMillis());
                ObjectNode message = ConnectRpc.object();
                if (event == null) {
                    message.putObject("event").putObject("keepalive");
                    ConnectRpc.writeMessage(out, message);
                    continue;
                }
                message.set("event", event);
                ConnectRpc.writeMessage(out, message);
                if (event.has("end")) {
                    ConnectRpc.endStream(out, null);
                    break;
                }
            }
            out.close();
        } catch (IOException e) {
            // The client went away (disconnect): the process keeps running, as envd's do.
            ex.complete(e);
        } finally {
            p.unsubscribe(events);
        }
    }

    private static ObjectNode list(ProcessTable table) {
        ObjectNode answer = ConnectRpc.object();
        ArrayNode processes = answer.putArray("processes");
        for (GuestProcess p : table.all()) {
            if (p.isEnded()) {
                continue;
            }
            ObjectNode info = processes.addObject();
            info.set("config", p.config());
            info.put("pid", p.pid());
            if (p.tag() != null) {
                info.put("tag", p.tag());
            }
        }
        return answer;
    }

    /** StreamInput: a client stream of start, data and keepalive messages; one empty answer at its end. */
    private static void streamInput(Exchange ex, ProcessTable table) throws IOException {
        if (!ConnectRpc.isStreaming(ex.header("Content-Type"))) {
            throw new E2bException(415, "StreamInput takes " + ConnectRpc.STREAM_TYPE);
        }
        GuestProcess target = null;
        @Nullable E2bException failure = null;
        try (InputStream in = ex.body()) {
            byte[] message;
            while ((message = ConnectRpc.readEnvelope(in)) != null) {
                JsonNode m = ConnectRpc.parse(message);
                if (m.has("start")) {
                    target = table.select(ConnectRpc.objectField(ConnectRpc.objectField(m, "start"), "process"));
                } else if (m.has("data")) {
                    if (target == null) {
                        throw E2bException.badRequest("StreamInput must begin with a start message naming the process");
                    }
                    target.input(input(ConnectRpc.objectField(ConnectRpc.objectField(m, "data"), "input")));
                }
            }
        } catch (E2bException e) {
            failure = e;
        }
        OutputStream out = ex.stream(200, ConnectRpc.STREAM_TYPE);
        if (failure == null) {
            ConnectRpc.writeMessage(out, ConnectRpc.object());
        }
        ConnectRpc.endStream(out, failure);
        out.close();
    }

    private static byte[] input(JsonNode input) {
        if (input.has("pty")) {
            return ConnectRpc.bytes(input, "pty");
        }
        return ConnectRpc.bytes(input, "stdin");
    }

    private static int signal(@Nullable JsonNode signal) {
        if (signal == null || signal.isNull()) {
            throw E2bException.badRequest("field 'signal' is required: SIGNAL_SIGTERM or SIGNAL_SIGKILL");
        }
        if (signal.isIntegralNumber() && (signal.intValue() == 9 || signal.intValue() == 15)) {
            return signal.intValue();
        }
        if (signal.isString()) {
            switch (signal.stringValue()) {
                case "SIGNAL_SIGKILL":
                    return 9;
                case "SIGNAL_SIGTERM":
                    return 15;
                default:
                    break;
            }
        }
        throw E2bException.badRequest("unknown signal " + signal + ": use SIGNAL_SIGTERM or SIGNAL_SIGKILL");
    }

    static Map<String, String> stringMap(JsonNode message, String field) {
        JsonNode v = message.get(field);
        Map<String, String> out = new LinkedHashMap<>();
        if (v == null || v.isNull()) {
            return out;
        }
        if (!v.isObject()) {
            throw E2bException.badRequest("field '" + field + "' must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> e : v.properties()) {
            if (!e.getValue().isString()) {
                throw E2bException.badRequest("field '" + field + "." + e.getKey() + "' must be a string");
            }
            out.put(e.getKey(), e.getValue().stringValue());
        }
        return out;
    }
}
