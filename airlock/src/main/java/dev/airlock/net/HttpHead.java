package dev.airlock.net;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.jspecify.annotations.Nullable;

/**
 * An HTTP/1.x message head (RFC 9112) as the proxy reads it from the guest: a start line and
 * header fields, strictly checked. Whatever a lenient parser would read one way and the
 * destination another (a folded line, white space before the colon, a bare CR or LF or other
 * control character, a name that is not a token) is refused rather than passed on.
 *
 * @param startLine the request or status line
 * @param fields the header fields in order, names as sent
 */
record HttpHead(String startLine, List<HttpHead.Field> fields) {
    HttpHead {
        fields = List.copyOf(fields);
    }

    record Field(String name, String value) {
        String lowerName() {
            return name.toLowerCase(Locale.ROOT);
        }

        @Override
        public String toString() {
            return name + ": " + value;
        }
    }

    /** The head cannot be passed on; the message says why (for the 400 and the log). */
    static final class Malformed extends Exception {
        private static final long serialVersionUID = 1L;

        Malformed(String message) {
            super(message);
        }
    }

    /** A request line: {@code METHOD SP TARGET SP HTTP/1.x}. */
    record RequestLine(String method, String target, String version) {}

    /** Parses a head without its final empty line, as {@link EgressProxy#readHead} returns it. */
    static HttpHead parse(byte[] head) throws Malformed {
        String[] lines = new String(head, StandardCharsets.ISO_8859_1).split("\r\n", -1);
        String start = lines[0];
        for (int i = 0; i < start.length(); i++) {
            if (isControl(start.charAt(i))) {
                throw new Malformed("a control character in the request line");
            }
        }
        List<Field> fields = new ArrayList<>();
        for (int i = 1; i < lines.length; i++) {
            String line = lines[i];
            if (line.isEmpty()) {
                throw new Malformed("an empty header line");
            }
            if (line.charAt(0) == ' ' || line.charAt(0) == '\t') {
                throw new Malformed("a folded header line (obsolete line folding is not accepted)");
            }
            int colon = line.indexOf(':');
            if (colon <= 0) {
                throw new Malformed("a header line without a name");
            }
            String name = line.substring(0, colon);
            if (!isToken(name)) {
                throw new Malformed("a header name that is not a token (white space before the colon?)");
            }
            String value = trimOws(line.substring(colon + 1));
            for (int k = 0; k < value.length(); k++) {
                char c = value.charAt(k);
                if (c != '\t' && isControl(c)) {
                    throw new Malformed("a control character in the value of header " + name);
                }
            }
            fields.add(new Field(name, value));
        }
        return new HttpHead(start, fields);
    }

    /** The request line, checked: a token method, a target of visible characters, HTTP/1.0 or 1.1. */
    RequestLine requestLine() throws Malformed {
        String[] parts = startLine.split(" ", -1);
        if (parts.length != 3) {
            throw new Malformed("a request line that is not METHOD TARGET VERSION");
        }
        if (!isToken(parts[0])) {
            throw new Malformed("a method that is not a token");
        }
        if (parts[1].isEmpty()) {
            throw new Malformed("an empty request target");
        }
        for (int i = 0; i < parts[1].length(); i++) {
            char c = parts[1].charAt(i);
            if (c <= 0x20 || c >= 0x7f) {
                throw new Malformed("a request target with characters outside visible ASCII");
            }
        }
        if (!parts[2].equals("HTTP/1.1") && !parts[2].equals("HTTP/1.0")) {
            throw new Malformed("HTTP version " + parts[2] + " (HTTP/1.0 and HTTP/1.1 are spoken here)");
        }
        return new RequestLine(parts[0], parts[1], parts[2]);
    }

    /** Every value of a header, in order; names are case-insensitive. */
    List<String> values(String name) {
        List<String> out = new ArrayList<>();
        for (Field f : fields) {
            if (f.name().equalsIgnoreCase(name)) {
                out.add(f.value());
            }
        }
        return out;
    }

    /** The value of a header that may appear once, or null when absent. */
    @Nullable
    String single(String name) throws Malformed {
        List<String> v = values(name);
        if (v.size() > 1) {
            throw new Malformed("header " + name + " appears " + v.size() + " times");
        }
        return v.isEmpty() ? null : v.getFirst();
    }

    /** Without the optional white space (space and tab only, RFC 9110 5.6.3) around a value. */
    private static String trimOws(String s) {
        int start = 0;
        int end = s.length();
        while (start < end && (s.charAt(start) == ' ' || s.charAt(start) == '\t')) {
            start++;
        }
        while (end > start && (s.charAt(end - 1) == ' ' || s.charAt(end - 1) == '\t')) {
            end--;
        }
        return s.substring(start, end);
    }

    static boolean isToken(String s) {
        if (s.isEmpty()) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean ok = (c >= 'a' && c <= 'z')
                    || (c >= 'A' && c <= 'Z')
                    || (c >= '0' && c <= '9')
                    || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    private static boolean isControl(char c) {
        return c < 0x20 || c == 0x7f;
    }
}
