package dev.airlock.vmm;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * A QEMU Machine Protocol client: newline-delimited JSON over the VM's control socket. Calls are
 * synchronous; asynchronous events that arrive in between are kept for {@link #events()}.
 */
final class Qmp implements AutoCloseable {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final SocketChannel channel;
    private final BufferedReader in;
    private final OutputStream out;
    private final List<JsonNode> events = new ArrayList<>();

    private Qmp(SocketChannel channel) {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        this.out = Channels.newOutputStream(channel);
    }

    static Qmp connect(Path socket) {
        try {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
                Qmp qmp = new Qmp(ch);
                JsonNode greeting = qmp.readMessage();
                if (!greeting.has("QMP")) {
                    throw new VmmException("QEMU control socket " + socket + " did not greet with QMP: " + greeting);
                }
                qmp.execute("qmp_capabilities", Map.of());
                return qmp;
            } catch (RuntimeException e) {
                ch.close();
                throw e;
            }
        } catch (IOException e) {
            throw new VmmException("cannot connect to QEMU control socket " + socket + ": " + e.getMessage(), e);
        }
    }

    /** Runs a command and returns its {@code return} value; a QMP error becomes an exception. */
    synchronized JsonNode execute(String command, Map<String, ?> arguments) {
        ObjectNode req = JSON.createObjectNode().put("execute", command);
        if (!arguments.isEmpty()) {
            req.set("arguments", JSON.valueToTree(arguments));
        }
        try {
            out.write((JSON.writeValueAsString(req) + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException e) {
            throw new VmmException("QMP " + command + ": the VMM closed its control socket", e);
        }
        while (true) {
            JsonNode msg = readMessage();
            if (msg.has("event")) {
                events.add(msg);
            } else if (msg.has("error")) {
                throw new VmmException("QMP " + command + " failed: "
                        + msg.get("error").path("desc").asString());
            } else if (msg.has("return")) {
                return msg.get("return");
            }
        }
    }

    /** Waits for an asynchronous event (kept or still to come) named {@code name} that matches. */
    synchronized JsonNode awaitEvent(String name, java.util.function.Predicate<JsonNode> matches) {
        for (java.util.Iterator<JsonNode> it = events.iterator(); it.hasNext(); ) {
            JsonNode e = it.next();
            if (e.path("event").asString().equals(name) && matches.test(e)) {
                it.remove();
                return e;
            }
        }
        while (true) {
            JsonNode msg = readMessage();
            if (msg.path("event").asString().equals(name) && matches.test(msg)) {
                return msg;
            }
            if (msg.has("event")) {
                events.add(msg);
            }
        }
    }

    synchronized List<JsonNode> events() {
        List<JsonNode> copy = List.copyOf(events);
        events.clear();
        return copy;
    }

    private JsonNode readMessage() {
        try {
            String line = in.readLine();
            if (line == null) {
                throw new VmmException("the VMM closed its control socket");
            }
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            // Closing a socket the VMM already dropped: nothing left to release.
        }
    }
}
