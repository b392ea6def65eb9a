package dev.airlock.net;

import org.jspecify.annotations.Nullable;

/**
 * Text that came from a sandbox (a CONNECT target, a Host header, console output), made safe to
 * put in a log line or on a terminal. A raw line feed would let the guest forge log lines; an
 * escape sequence would let it move the cursor, retitle or reprogram the terminal of whoever
 * reads its output.
 */
public final class UntrustedText {
    private UntrustedText() {}

    /**
     * One field of a one-line log record: every control character (line breaks included),
     * DEL, C1 controls, Unicode line separators and bidirectional overrides shown as an escape
     * ({@code \n}, {@code \r}, {@code \t}, {@code \xNN}, {@code \}{@code uNNNN}), and the
     * backslash doubled, so what is printed can be read back unambiguously.
     */
    public static String logField(String s) {
        return escape(s, false);
    }

    /**
     * Guest output for a terminal: as {@link #logField} but line feeds and tabs are kept and
     * backslashes are left alone (they are harmless on a terminal and common in output).
     */
    public static String forTerminal(String s) {
        return escape(s, true);
    }

    private static String escape(String s, boolean terminal) {
        StringBuilder out = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String replacement = replacement(c, terminal);
            if (replacement == null) {
                if (out != null) {
                    out.append(c);
                }
                continue;
            }
            if (out == null) {
                out = new StringBuilder(s.length() + 16).append(s, 0, i);
            }
            out.append(replacement);
        }
        return out == null ? s : out.toString();
    }

    private static @Nullable String replacement(char c, boolean terminal) {
        if (c == '\n' || c == '\t') {
            return terminal ? null : c == '\n' ? "\\n" : "\\t";
        }
        if (c == '\r') {
            return "\\r";
        }
        if (c == '\\') {
            return terminal ? null : "\\\\";
        }
        if (c < 0x20 || c == 0x7f) {
            return String.format("\\x%02x", (int) c);
        }
        // C1 controls (0x9b is a one-byte CSI on some terminals), line and paragraph separators,
        // and the bidirectional controls that make text display in another order than it reads.
        if ((c >= 0x80 && c <= 0x9f)
                || c == 0x2028
                || c == 0x2029
                || (c >= 0x202a && c <= 0x202e)
                || (c >= 0x2066 && c <= 0x2069)
                || c == 0x200e
                || c == 0x200f
                || c == 0x061c) {
            return String.format("\\u%04x", (int) c);
        }
        return null;
    }
}
