package dev.airlock.e2b;

import dev.airlock.guest.GuestChannelClosedException;
import dev.airlock.guest.GuestException;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import tools.jackson.databind.JsonNode;

/** Runs one Connect call: reads the request message, calls the method, answers or ends with the error. */
final class Rpc {
    private Rpc() {}

    interface Unary {
        JsonNode call(JsonNode request) throws IOException, InterruptedException;
    }

    interface ServerStream {
        void call(JsonNode request) throws IOException, InterruptedException;
    }

    static void unary(Exchange ex, Unary method) throws InterruptedException {
        try {
            if (!ConnectRpc.isUnaryJson(ex.header("Content-Type"))) {
                throw new E2bException(
                        415, "this server speaks Connect with the JSON codec: send Content-Type: application/json");
            }
            byte[] body;
            try (InputStream in = ex.body()) {
                body = in.readNBytes(ConnectRpc.MAX_MESSAGE + 1);
            }
            if (body.length > ConnectRpc.MAX_MESSAGE) {
                throw new E2bException(413, "the message is larger than " + ConnectRpc.MAX_MESSAGE + " bytes");
            }
            ex.json(200, method.call(ConnectRpc.parse(body)));
        } catch (E2bException | SandboxException | IOException e) {
            ConnectRpc.unaryError(ex, error(e));
        }
    }

    static void serverStream(Exchange ex, ServerStream method) throws InterruptedException {
        try {
            if (!ConnectRpc.isStreaming(ex.header("Content-Type"))) {
                throw new E2bException(415, "a streaming call takes Content-Type: " + ConnectRpc.STREAM_TYPE);
            }
            JsonNode request;
            try (InputStream in = ex.body()) {
                byte[] message = ConnectRpc.readEnvelope(in);
                request = ConnectRpc.parse(message == null ? new byte[0] : message);
            }
            method.call(request);
        } catch (E2bException | SandboxException | IOException e) {
            E2bException err = error(e);
            if (ex.answered()) {
                ex.complete(err);
                return;
            }
            try {
                OutputStream out = ex.stream(200, ConnectRpc.STREAM_TYPE);
                ConnectRpc.endStream(out, err);
                out.close();
            } catch (IOException lost) {
                ex.complete(lost);
            }
        }
    }

    /** Any failure in E2B's terms: the service's kinds and the guest's errno values by their meaning. */
    static E2bException error(Exception e) {
        if (e instanceof E2bException ee) {
            return ee;
        }
        if (e instanceof SandboxException se) {
            return E2bException.of(se);
        }
        if (e instanceof GuestChannelClosedException) {
            return new E2bException(502, "the sandbox's session ended (was it killed or paused?): " + e.getMessage());
        }
        if (e instanceof GuestException ge) {
            int status = switch (ge.errno()) {
                case 2 -> 404;
                case 1, 13, 30 -> 403;
                case 17, 39 -> 409;
                case 20, 21, 22, 36, 40 -> 400;
                case 28 -> 507;
                default -> 500;
            };
            return new E2bException(
                    status, ge.agentMessage().isEmpty() ? String.valueOf(ge.getMessage()) : ge.agentMessage(), ge);
        }
        return new E2bException(500, e.getMessage() != null ? e.getMessage() : e.toString(), e);
    }
}
