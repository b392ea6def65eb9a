package dev.airlock.net;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Copying HTTP/1.1 message bodies by their framing (RFC 9112 6, 7.1). */
final class HttpBodies {
    private HttpBodies() {}

    private static final int MAX_LINE = 8192;

    /** Exactly {@code n} bytes; the stream ending first is an error. */
    static void copyExactly(InputStream in, OutputStream out, long n) throws IOException {
        byte[] buf = new byte[16 << 10];
        long left = n;
        while (left > 0) {
            int r = in.read(buf, 0, (int) Math.min(buf.length, left));
            if (r < 0) {
                throw new IOException("the body ended early");
            }
            out.write(buf, 0, r);
            left -= r;
        }
    }

    /** Chunks as they come, verbatim, through the last chunk and the trailers. */
    static void copyChunked(InputStream in, OutputStream out) throws IOException {
        while (true) {
            String sizeLine = readLine(in);
            out.write((sizeLine + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
            long size = chunkSize(sizeLine);
            if (size == 0) {
                String trailer;
                do {
                    trailer = readLine(in);
                    out.write((trailer + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
                } while (!trailer.isEmpty());
                out.flush();
                return;
            }
            copyExactly(in, out, size + 2);
            out.flush();
        }
    }

    /** The size of a chunk from its size line ({@code 1a;ext=x}). */
    static long chunkSize(String sizeLine) throws IOException {
        int semi = sizeLine.indexOf(';');
        String hex = (semi < 0 ? sizeLine : sizeLine.substring(0, semi)).strip();
        if (hex.isEmpty() || hex.length() > 15 || !hex.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            throw new IOException("malformed chunk size " + UntrustedText.logField(sizeLine));
        }
        return Long.parseLong(hex, 16);
    }

    /** One line without its CRLF (a bare LF ends it too), at most {@value #MAX_LINE} bytes. */
    static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) >= 0 && b != '\n') {
            if (line.size() > MAX_LINE) {
                throw new IOException("a chunk line longer than " + MAX_LINE + " bytes");
            }
            line.write(b);
        }
        if (b < 0) {
            throw new IOException("the body ended early");
        }
        String s = line.toString(StandardCharsets.ISO_8859_1);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }
}
