package dev.airlock.build;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Docker's word processing for the instructions that take it (FROM, COPY, ADD, ENV, LABEL,
 * WORKDIR, USER, EXPOSE, STOPSIGNAL, VOLUME): {@code $NAME} and {@code ${NAME}} with the
 * modifiers {@code :-}, {@code -}, {@code :+}, {@code +}; single quotes keep everything literal,
 * double quotes keep blanks together and still expand; the escape character takes the next
 * character literally ({@code \$HOME} stays {@code $HOME}). RUN, CMD and ENTRYPOINT are left to
 * the shell.
 */
final class ShellWords {
    private final char escape;
    private final Map<String, String> vars;

    ShellWords(char escape, Map<String, String> vars) {
        this.escape = escape;
        this.vars = vars;
    }

    /** Blank-separated words, expanded, quotes removed. */
    List<String> words(String s) {
        List<String> out = new ArrayList<>();
        for (String raw : rawWords(s)) {
            out.add(word(raw));
        }
        return out;
    }

    /** One word (blanks kept), expanded, quotes removed. */
    String word(String s) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == escape) {
                if (i + 1 < s.length()) {
                    out.append(s.charAt(i + 1));
                    i += 2;
                } else {
                    out.append(c);
                    i++;
                }
            } else if (c == '\'') {
                int end = s.indexOf('\'', i + 1);
                if (end < 0) {
                    throw new BuildException("unterminated single quote in: " + s);
                }
                out.append(s, i + 1, end);
                i = end + 1;
            } else if (c == '"') {
                i++;
                boolean closed = false;
                while (i < s.length()) {
                    char d = s.charAt(i);
                    if (d == '"') {
                        closed = true;
                        i++;
                        break;
                    }
                    if (d == escape && i + 1 < s.length()) {
                        char n = s.charAt(i + 1);
                        if (n == '"' || n == '$' || n == escape) {
                            out.append(n);
                            i += 2;
                            continue;
                        }
                        out.append(d);
                        i++;
                        continue;
                    }
                    if (d == '$') {
                        i = variable(s, i, out);
                        continue;
                    }
                    out.append(d);
                    i++;
                }
                if (!closed) {
                    throw new BuildException("unterminated double quote in: " + s);
                }
            } else if (c == '$') {
                i = variable(s, i, out);
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    /**
     * Splits on blanks outside quotes, keeping quotes and escapes as written (for
     * {@code NAME=VALUE} pairs, whose value is then expanded on its own).
     */
    List<String> rawWords(String s) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean inWord = false;
        char quote = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote == 0 && Character.isWhitespace(c)) {
                if (inWord) {
                    out.add(cur.toString());
                    cur.setLength(0);
                    inWord = false;
                }
                continue;
            }
            inWord = true;
            cur.append(c);
            if (c == escape && quote != '\'' && i + 1 < s.length()) {
                cur.append(s.charAt(++i));
            } else if (quote == 0 && (c == '\'' || c == '"')) {
                quote = c;
            } else if (c == quote) {
                quote = 0;
            }
        }
        if (quote != 0) {
            throw new BuildException("unterminated " + (quote == '"' ? "double" : "single") + " quote in: " + s);
        }
        if (inWord) {
            out.add(cur.toString());
        }
        return out;
    }

    /** Expands the variable at {@code s[i] == '$'} into {@code out}; returns the index after it. */
    private int variable(String s, int i, StringBuilder out) {
        int j = i + 1;
        if (j < s.length() && s.charAt(j) == '{') {
            int close = matchingBrace(s, j);
            String inner = s.substring(j + 1, close);
            int n = 0;
            while (n < inner.length() && isNameChar(inner.charAt(n), n == 0)) {
                n++;
            }
            if (n == 0) {
                throw new BuildException("bad variable reference ${" + inner + "} in: " + s);
            }
            String name = inner.substring(0, n);
            String rest = inner.substring(n);
            @Nullable String value = vars.get(name);
            if (rest.isEmpty()) {
                out.append(value == null ? "" : value);
            } else if (rest.startsWith(":-") || rest.startsWith("-")) {
                boolean colon = rest.startsWith(":");
                String alt = rest.substring(colon ? 2 : 1);
                boolean use = value == null || (colon && value.isEmpty());
                out.append(use ? word(alt) : value);
            } else if (rest.startsWith(":+") || rest.startsWith("+")) {
                boolean colon = rest.startsWith(":");
                String alt = rest.substring(colon ? 2 : 1);
                boolean set = value != null && !(colon && value.isEmpty());
                out.append(set ? word(alt) : "");
            } else {
                throw new BuildException("unsupported modifier in ${" + inner + "} (use :-, -, :+ or +) in: " + s);
            }
            return close + 1;
        }
        int n = j;
        while (n < s.length() && isNameChar(s.charAt(n), n == j)) {
            n++;
        }
        if (n == j) {
            out.append('$');
            return j;
        }
        String value = vars.get(s.substring(j, n));
        out.append(value == null ? "" : value);
        return n;
    }

    private static int matchingBrace(String s, int open) {
        int depth = 0;
        for (int k = open; k < s.length(); k++) {
            char c = s.charAt(k);
            if (c == '{') {
                depth++;
            } else if (c == '}' && --depth == 0) {
                return k;
            }
        }
        throw new BuildException("missing '}' in: " + s);
    }

    private static boolean isNameChar(char c, boolean first) {
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
    }
}
