package dev.airlock.e2b;

import dev.airlock.wire.Json;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The Connect protocol with its JSON codec, as envd speaks it: a unary call is one JSON message
 * each way ({@code application/json}); a streaming call carries enveloped messages ({@code
 * application/connect+json}: a flags byte, a 32-bit big-endian length, the JSON), ending with
 * an end-of-stream envelope (flag 2) that holds the error, if any. Compressed envelopes are
 * refused: none is ever asked for, since this server announces no compression.
 */
final class ConnectRpc {
    static final String UNARY_TYPE = "application/json";
    static final String STREAM_TYPE = "application/connect+json";
    private static final int FLAG_COMPRESSED = 1;
    private static final int FLAG_END_STREAM = 2;
    /** Envd's messages are small; file bytes travel over {@code /files}, not RPCs. */
    static final int MAX_MESSAGE = 4 << 20;

    private ConnectRpc() {}

    static boolean isStreaming(@Nullable String contentType) {
        return contentType != null
                && contentType.toLowerCase(java.util.Locale.ROOT).startsWith(STREAM_TYPE);
    }

    static boolean isUnaryJson(@Nullable String contentType) {
        return contentType != null
                && contentType.toLowerCase(java.util.Locale.ROOT).startsWith(UNARY_TYPE);
    }

    static ObjectNode object() {
        return Json.MAPPER.createObjectNode();
    }

    /** Parses a message; anything but a JSON object is the caller's mistake. */
    static JsonNode parse(byte[] bytes) {
        if (bytes.length == 0) {
            return object();
        }
        try {
            JsonNode node = Json.MAPPER.readTree(bytes);
            if (node == null || !node.isObject()) {
                throw E2bException.badRequest("the message must be a JSON object");
            }
            return node;
        } catch (JacksonException e) {
            throw E2bException.badRequest("the message is not valid JSON: " + e.getOriginalMessage());
        }
    }

    /** The next enveloped message, or null at the end of the body. */
    static byte @Nullable [] readEnvelope(InputStream in) throws IOException {
        int flags = in.read();
        if (flags < 0) {
            return null;
        }
        byte[] header = in.readNBytes(4);
        if (header.length < 4) {
            throw E2bException.badRequest("the request ends inside an envelope header");
        }
        long length = Integer.toUnsignedLong(ByteBuffer.wrap(header).getInt());
        if ((flags & FLAG_COMPRESSED) != 0) {
            throw new E2bException(501, "compressed messages are not supported (no compression was announced)");
        }
        if (length > MAX_MESSAGE) {
            throw new E2bException(413, "a message of " + length + " bytes is larger than " + MAX_MESSAGE);
        }
        byte[] message = in.readNBytes((int) length);
        if (message.length < length) {
            throw new EOFException("the request ends inside a message");
        }
        if ((flags & FLAG_END_STREAM) != 0) {
            return null;
        }
        return message;
    }

    static void writeEnvelope(OutputStream out, int flags, byte[] message) throws IOException {
        byte[] header =
                ByteBuffer.allocate(5).put((byte) flags).putInt(message.length).array();
        out.write(header);
        out.write(message);
        out.flush();
    }

    static void writeMessage(OutputStream out, JsonNode message) throws IOException {
        writeEnvelope(out, 0, Json.MAPPER.writeValueAsBytes(message));
    }

    /** Ends a stream: well ({@code error} null) or with the error's Connect code and message. */
    static void endStream(OutputStream out, @Nullable E2bException error) throws IOException {
        ObjectNode end = object();
        if (error != null) {
            end.putObject("error").put("code", error.connectCode()).put("message", error.getMessage());
        }
        writeEnvelope(out, FLAG_END_STREAM, Json.MAPPER.writeValueAsBytes(end));
    }

    /** A unary error answer: Connect's status for the code and its JSON error body. */
    static void unaryError(Exchange ex, E2bException error) {
        String code = error.connectCode();
        ObjectNode body = object().put("code", code).put("message", error.getMessage());
        ex.json(E2bException.statusOfCode(code), body);
    }

    /** How long the client gives the call ({@code Connect-Timeout-Ms}), or null for no limit. */
    static @Nullable Duration timeout(Exchange ex) {
        String header = ex.header("Connect-Timeout-Ms");
        if (header == null || header.isBlank()) {
            return null;
        }
        if (!header.matches("\\d{1,10}")) {
            throw E2bException.badRequest("Connect-Timeout-Ms '" + header + "' is not a number of milliseconds");
        }
        long ms = Long.parseLong(header);
        return ms == 0 ? null : Duration.ofMillis(ms);
    }

    /** How often a stream says it is alive ({@code Keepalive-Ping-Interval}, seconds), default 30 s. */
    static Duration keepalive(Exchange ex) {
        String header = ex.header("Keepalive-Ping-Interval");
        if (header != null && header.matches("\\d{1,5}") && Integer.parseInt(header) > 0) {
            return Duration.ofSeconds(Integer.parseInt(header));
        }
        return Duration.ofSeconds(30);
    }

    // ---- reading fields of a message ----------------------------------------------------------

    static @Nullable String string(JsonNode message, String field) {
        JsonNode v = message.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isString()) {
            throw E2bException.badRequest("field '" + field + "' must be a string");
        }
        return v.stringValue();
    }

    static String requiredString(JsonNode message, String field) {
        String v = string(message, field);
        if (v == null || v.isEmpty()) {
            throw E2bException.badRequest("field '" + field + "' is required");
        }
        return v;
    }

    static long number(JsonNode message, String field, long fallback) {
        JsonNode v = message.get(field);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (v.isIntegralNumber()) {
            return v.longValue();
        }
        if (v.isString() && v.stringValue().matches("-?\\d{1,18}")) {
            return Long.parseLong(v.stringValue());
        }
        throw E2bException.badRequest("field '" + field + "' must be a whole number");
    }

    static boolean bool(JsonNode message, String field) {
        JsonNode v = message.get(field);
        if (v == null || v.isNull()) {
            return false;
        }
        if (!v.isBoolean()) {
            throw E2bException.badRequest("field '" + field + "' must be true or false");
        }
        return v.booleanValue();
    }

    static JsonNode objectField(JsonNode message, String field) {
        JsonNode v = message.get(field);
        if (v == null || v.isNull()) {
            return object();
        }
        if (!v.isObject()) {
            throw E2bException.badRequest("field '" + field + "' must be an object");
        }
        return v;
    }

    static byte[] bytes(JsonNode message, String field) {
        String v = string(message, field);
        if (v == null) {
            return new byte[0];
        }
        try {
            // Protobuf's JSON accepts both base64 alphabets, padded or not.
            return java.util.Base64.getDecoder().decode(v.replace('-', '+').replace('_', '/'));
        } catch (IllegalArgumentException e) {
            throw E2bException.badRequest("field '" + field + "' is not base64");
        }
    }
}
