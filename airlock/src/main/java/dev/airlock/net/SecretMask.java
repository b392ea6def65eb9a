package dev.airlock.net;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Masks the real values of secrets in bytes going back to the guest: every occurrence becomes as
 * many {@code *} as it has bytes. Same length, so a response's {@code Content-Length} and chunk
 * sizes stay right and nothing else of it needs rewriting.
 *
 * <p>A value may arrive split over reads (or chunks): the {@link #filter} holds back the bytes at
 * the end of what it has seen that could be the start of a value, and only those, until the next
 * bytes decide. Streams whose data does not end in such a prefix (server-sent events end in a
 * blank line) go through without delay.
 */
final class SecretMask {
    private static final byte MASK = '*';
    private final List<byte[]> values;

    SecretMask(List<Secret> secrets) {
        List<byte[]> v = new ArrayList<>();
        for (Secret s : secrets) {
            // Latin-1 is how the value went out in a header; UTF-8 how a server may send it back.
            for (byte[] form : List.of(
                    s.value().getBytes(StandardCharsets.ISO_8859_1), s.value().getBytes(StandardCharsets.UTF_8))) {
                if (form.length > 0 && v.stream().noneMatch(x -> Arrays.equals(x, form))) {
                    v.add(form);
                }
            }
        }
        this.values = List.copyOf(v);
    }

    boolean isEmpty() {
        return values.isEmpty();
    }

    /** Masks every whole occurrence in {@code b[off, off + len)}, in place. */
    void maskAll(byte[] b, int off, int len) {
        boolean[] hit = new boolean[len];
        boolean any = false;
        for (byte[] v : values) {
            for (int i = 0; i + v.length <= len; i++) {
                if (b[off + i] == v[0] && Arrays.equals(b, off + i, off + i + v.length, v, 0, v.length)) {
                    Arrays.fill(hit, i, i + v.length, true);
                    any = true;
                }
            }
        }
        if (any) {
            for (int i = 0; i < len; i++) {
                if (hit[i]) {
                    b[off + i] = MASK;
                }
            }
        }
    }

    /** How many bytes at the end of {@code b[0, len)} are a proper prefix of some value. */
    private int heldBack(byte[] b, int len) {
        int hold = 0;
        for (byte[] v : values) {
            for (int k = Math.min(v.length - 1, len); k > hold; k--) {
                if (Arrays.equals(b, len - k, len, v, 0, k)) {
                    hold = k;
                    break;
                }
            }
        }
        return hold;
    }

    /** A filter in front of {@code sink}; {@link Filter#finish} passes on what it held back. */
    Filter filter(OutputStream sink) {
        return new Filter(sink);
    }

    final class Filter extends OutputStream {
        private final OutputStream sink;
        private byte[] pending = new byte[256];
        private int length;

        private Filter(OutputStream sink) {
            this.sink = sink;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return;
            }
            if (length + len > pending.length) {
                pending = Arrays.copyOf(pending, Math.max(length + len, 2 * pending.length));
            }
            System.arraycopy(b, off, pending, length, len);
            length += len;
            maskAll(pending, 0, length);
            int emit = length - heldBack(pending, length);
            if (emit > 0) {
                sink.write(pending, 0, emit);
                System.arraycopy(pending, emit, pending, 0, length - emit);
                length -= emit;
            }
        }

        @Override
        public void flush() throws IOException {
            sink.flush();
        }

        /** The stream's data has ended: what was held back cannot become a value any more. */
        void finish() throws IOException {
            if (length > 0) {
                sink.write(pending, 0, length);
                length = 0;
            }
            sink.flush();
        }

        /** Finishes; does not close the sink (the connection may carry further responses). */
        @Override
        public void close() throws IOException {
            finish();
        }
    }
}
