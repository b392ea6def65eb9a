package dev.airlock.mcp;

import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.spec.McpSchema;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The two ends of {@code airlock mcp}'s stdio, one JSON-RPC message a line, between the client
 * and the SDK's transport. The transport stops reading for good at a line it cannot take (not
 * JSON, or JSON that is no JSON-RPC message) and its client then waits forever for every later
 * answer; so each line is checked here first, and a bad one is answered with JSON-RPC's error
 * and kept from the transport. The answer goes out between two whole lines of the transport's.
 */
final class StdioLines {
    private static final int PARSE_ERROR = -32700;
    private static final int INVALID_REQUEST = -32600;

    private final McpJsonMapper json;
    private final InputStream in;
    private final OutputStream out;
    private final Runnable ended;
    /** Bytes of the transport's answer not yet ended by its newline. */
    private final ByteArrayOutputStream pendingOut = new ByteArrayOutputStream();

    private final Object outLock = new Object();
    private volatile boolean oversized;
    private final byte[] buf = new byte[1 << 16];
    private int bufPos;
    private int bufLen;

    /** {@code ended} runs once the input has ended (or a line too long for a session arrived). */
    StdioLines(McpJsonMapper json, InputStream in, OutputStream out, Runnable ended) {
        this.json = json;
        this.in = in;
        this.out = out;
        this.ended = ended;
    }

    /** True once a line longer than {@link McpStdio#MAX_MESSAGE_BYTES} ended the input. */
    boolean oversized() {
        return oversized;
    }

    /** What the transport reads: the client's lines that are JSON-RPC messages. */
    InputStream input() {
        return new InputStream() {
            private byte[] line = new byte[0];
            private int pos;

            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                int n = read(one, 0, 1);
                return n < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] buf, int off, int len) throws IOException {
                while (pos == line.length) {
                    byte[] next = nextMessage();
                    if (next == null) {
                        return -1;
                    }
                    line = next;
                    pos = 0;
                }
                int n = Math.min(len, line.length - pos);
                System.arraycopy(line, pos, buf, off, n);
                pos += n;
                return n;
            }
        };
    }

    /** What the transport writes its answers to: passed on a whole line at a time. */
    OutputStream output() {
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                synchronized (outLock) {
                    int end = off + len;
                    while (end > off && b[end - 1] != '\n') {
                        end--;
                    }
                    if (end > off) {
                        pendingOut.writeTo(out);
                        pendingOut.reset();
                        out.write(b, off, end - off);
                    }
                    pendingOut.write(b, end, off + len - end);
                }
            }

            @Override
            public void flush() throws IOException {
                synchronized (outLock) {
                    out.flush();
                }
            }
        };
    }

    /** The next line that is a JSON-RPC message, with its newline; null at the end of the input. */
    private byte @Nullable [] nextMessage() throws IOException {
        while (true) {
            byte[] line = readLine();
            if (line == null) {
                ended.run();
                return null;
            }
            String text = new String(line, StandardCharsets.UTF_8);
            if (text.isBlank()) {
                continue;
            }
            try {
                McpSchema.deserializeJsonRpcMessage(json, text);
                byte[] withNewline = Arrays.copyOf(line, line.length + 1);
                withNewline[line.length] = '\n';
                return withNewline;
            } catch (RuntimeException | IOException notAMessage) {
                refuse(text);
            }
        }
    }

    /** Answers a line that is no JSON-RPC message, as JSON-RPC says: an error without an id. */
    private void refuse(String text) throws IOException {
        boolean isJson;
        try {
            json.readValue(text, Object.class);
            isJson = true;
        } catch (RuntimeException | IOException e) {
            isJson = false;
        }
        String message = isJson
                ? "a line that is JSON but not a JSON-RPC 2.0 request, notification or response: skipped"
                : "a line that is not JSON: skipped; send one JSON-RPC message a line";
        // by hand: JSON-RPC wants "id": null here, which the SDK's own records leave out
        Map<String, @Nullable Object> answer = new LinkedHashMap<>();
        answer.put("jsonrpc", McpSchema.JSONRPC_VERSION);
        answer.put("id", null);
        answer.put("error", Map.of("code", isJson ? INVALID_REQUEST : PARSE_ERROR, "message", message));
        String line = json.writeValueAsString(answer);
        synchronized (outLock) {
            out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
    }

    /**
     * One line without its newline, or null at the end of the input. A line longer than a session
     * can hold ends the input, said on stderr: the stream cannot be resynchronised past it cheaply.
     */
    private byte @Nullable [] readLine() throws IOException {
        if (oversized) {
            return null;
        }
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        while (true) {
            if (bufPos == bufLen) {
                try {
                    bufLen = in.read(buf);
                } catch (IOException e) {
                    ended.run();
                    throw e;
                }
                bufPos = 0;
                if (bufLen < 0) {
                    bufLen = 0;
                    return line.size() == 0 ? null : line.toByteArray();
                }
            }
            int start = bufPos;
            while (bufPos < bufLen && buf[bufPos] != '\n') {
                bufPos++;
            }
            line.write(buf, start, bufPos - start);
            if (line.size() > McpStdio.MAX_MESSAGE_BYTES) {
                oversized = true;
                System.err.println("airlock mcp: a message longer than " + (McpStdio.MAX_MESSAGE_BYTES >> 20)
                        + " MiB arrived; a stdio session cannot skip it, so the server ends. Move large"
                        + " files with airlock cp, or write them in parts.");
                return null;
            }
            if (bufPos < bufLen) {
                bufPos++; // the newline
                return line.toByteArray();
            }
        }
    }
}
