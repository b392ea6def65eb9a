package dev.airlock.build;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The rules of a {@code .dockerignore}: one pattern a line ({@code #} comments, blank lines
 * skipped), Go's glob syntax per path component ({@code *}, {@code ?}, {@code [a-z]}) plus
 * {@code **} for any number of directories, {@code !} for an exception. The last pattern that
 * matches a path, or one of its parent directories, decides. Paths are relative to the context,
 * with {@code /} separators.
 */
final class DockerIgnore {
    private record Rule(Pattern regex, boolean exception) {}

    private final List<Rule> rules;

    private DockerIgnore(List<Rule> rules) {
        this.rules = List.copyOf(rules);
    }

    static final DockerIgnore NONE = new DockerIgnore(List.of());

    static DockerIgnore parse(String text) {
        List<Rule> rules = new ArrayList<>();
        for (String line : text.split("\n")) {
            String p = line.strip();
            if (p.isEmpty() || p.startsWith("#")) {
                continue;
            }
            boolean exception = p.startsWith("!");
            if (exception) {
                p = p.substring(1).strip();
            }
            p = clean(p);
            if (p.isEmpty()) {
                continue;
            }
            rules.add(new Rule(Pattern.compile(regex(p)), exception));
        }
        return new DockerIgnore(rules);
    }

    /** Whether the context path {@code rel} is left out of the build. */
    boolean excluded(String rel) {
        boolean out = false;
        for (Rule r : rules) {
            if (matchesOrParent(r.regex(), rel)) {
                out = !r.exception();
            }
        }
        return out;
    }

    /** Whether any exception pattern exists: then excluded directories must still be looked into. */
    boolean hasExceptions() {
        return rules.stream().anyMatch(Rule::exception);
    }

    private static boolean matchesOrParent(Pattern p, String rel) {
        if (p.matcher(rel).matches()) {
            return true;
        }
        for (int slash = rel.lastIndexOf('/'); slash > 0; slash = rel.lastIndexOf('/', slash - 1)) {
            if (p.matcher(rel.substring(0, slash)).matches()) {
                return true;
            }
        }
        return false;
    }

    /** Lexically cleaned, no leading slash: "./a//b/../c/" is "a/c". */
    static String clean(String p) {
        List<String> parts = new ArrayList<>();
        for (String seg : p.split("/")) {
            if (seg.isEmpty() || seg.equals(".")) {
                continue;
            }
            if (seg.equals("..")) {
                if (!parts.isEmpty()) {
                    parts.removeLast();
                }
                continue;
            }
            parts.add(seg);
        }
        return String.join("/", parts);
    }

    /** A glob as a regular expression over whole paths. */
    static String regex(String glob) {
        StringBuilder r = new StringBuilder();
        String[] segs = glob.split("/");
        for (int s = 0; s < segs.length; s++) {
            String seg = segs[s];
            boolean last = s == segs.length - 1;
            if (seg.equals("**")) {
                r.append(last ? ".*" : "(?:.*/)?");
                continue;
            }
            r.append(segmentRegex(seg));
            if (!last) {
                r.append('/');
            }
        }
        return r.toString();
    }

    private static String segmentRegex(String seg) {
        StringBuilder r = new StringBuilder();
        for (int i = 0; i < seg.length(); i++) {
            char c = seg.charAt(i);
            switch (c) {
                case '*' -> r.append("[^/]*");
                case '?' -> r.append("[^/]");
                case '[' -> {
                    int end = seg.indexOf(']', i + 2);
                    if (end < 0) {
                        throw new BuildException(".dockerignore: unterminated character class in '" + seg + "'");
                    }
                    String body = seg.substring(i + 1, end);
                    boolean negate = body.startsWith("^") || body.startsWith("!");
                    if (negate) {
                        body = body.substring(1);
                    }
                    r.append('[').append(negate ? "^/" : "");
                    for (char b : body.toCharArray()) {
                        r.append(b == '\\' || b == '[' || b == ']' || b == '&' || b == '^' ? "\\" + b : b);
                    }
                    r.append(']');
                    i = end;
                }
                case '\\' -> {
                    if (i + 1 < seg.length()) {
                        r.append(Pattern.quote(String.valueOf(seg.charAt(++i))));
                    }
                }
                default -> r.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return r.toString();
    }
}
