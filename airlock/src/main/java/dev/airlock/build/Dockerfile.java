package dev.airlock.build;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A Dockerfile split into instructions, as Docker's parser does it: parser directives at the top
 * ({@code # escape=}, {@code # syntax=}), comment lines, line continuations with the escape
 * character, and each instruction's keyword (any case) and the rest of its line. What the
 * arguments mean is for {@link ImageBuilder}; an unknown keyword is refused here with its line.
 *
 * @param file the file's name, for errors ({@code Dockerfile:12: ...})
 * @param escape the escape character: {@code \} unless a directive says {@code `}
 */
public record Dockerfile(String file, char escape, List<Instruction> instructions) {

    /** The instructions Airlock builds. */
    static final Set<String> KEYWORDS = Set.of(
            "FROM",
            "RUN",
            "COPY",
            "ADD",
            "ENV",
            "ARG",
            "WORKDIR",
            "USER",
            "LABEL",
            "ENTRYPOINT",
            "CMD",
            "SHELL",
            "EXPOSE",
            "STOPSIGNAL",
            "VOLUME",
            "MAINTAINER");

    /** Docker's, which Airlock refuses with a reason rather than as unknown. */
    private static final Set<String> UNSUPPORTED = Set.of("HEALTHCHECK", "ONBUILD");

    public Dockerfile {
        instructions = List.copyOf(instructions);
    }

    /**
     * One instruction.
     *
     * @param line the line it starts on
     * @param keyword upper case
     * @param args the rest of its logical line, continuations joined, leading blanks removed
     */
    public record Instruction(int line, String keyword, String args) {
        /** As a build log shows it: keyword and arguments. */
        public String text() {
            return args.isEmpty() ? keyword : keyword + " " + args;
        }
    }

    public static Dockerfile parse(String text, String file) {
        String[] lines = text.replace("\r\n", "\n").split("\n", -1);
        char escape = '\\';
        int i = 0;
        // Directives: "# key=value" lines before anything else.
        for (; i < lines.length; i++) {
            String l = lines[i].strip();
            if (!l.startsWith("#")) {
                break;
            }
            String body = l.substring(1).strip();
            int eq = body.indexOf('=');
            if (eq <= 0 || body.substring(0, eq).strip().contains(" ")) {
                break;
            }
            String key = body.substring(0, eq).strip().toLowerCase(Locale.ROOT);
            String value = body.substring(eq + 1).strip();
            if (key.equals("escape")) {
                if (!value.equals("\\") && !value.equals("`")) {
                    throw new BuildException(
                            file + ":" + (i + 1) + ": the escape directive takes \\ or `, not '" + value + "'");
                }
                escape = value.charAt(0);
            } else if (!key.equals("syntax") && !key.equals("check")) {
                break; // an ordinary comment that happens to hold '='
            }
        }
        List<Instruction> out = new ArrayList<>();
        StringBuilder logical = null;
        int start = 0;
        for (; i < lines.length; i++) {
            String raw = lines[i];
            String stripped = raw.strip();
            if (stripped.startsWith("#")) {
                continue; // comments, also inside a continued instruction
            }
            if (logical == null) {
                if (stripped.isEmpty()) {
                    continue;
                }
                logical = new StringBuilder();
                start = i + 1;
            } else if (stripped.isEmpty()) {
                continue; // an empty continuation line is dropped, as Docker does
            }
            String trailingTrimmed = raw.stripTrailing();
            if (!trailingTrimmed.isEmpty() && trailingTrimmed.charAt(trailingTrimmed.length() - 1) == escape) {
                logical.append(trailingTrimmed, 0, trailingTrimmed.length() - 1);
                continue;
            }
            logical.append(raw);
            out.add(instruction(logical.toString(), start, file));
            logical = null;
        }
        if (logical != null) {
            out.add(instruction(logical.toString(), start, file));
        }
        if (out.isEmpty()) {
            throw new BuildException(file + " has no instructions; a Dockerfile starts with FROM IMAGE");
        }
        return new Dockerfile(file, escape, out);
    }

    private static Instruction instruction(String line, int number, String file) {
        String s = line.strip();
        int sp = 0;
        while (sp < s.length() && !Character.isWhitespace(s.charAt(sp))) {
            sp++;
        }
        String keyword = s.substring(0, sp).toUpperCase(Locale.ROOT);
        String args = s.substring(sp).strip();
        if (UNSUPPORTED.contains(keyword)) {
            throw new BuildException(file + ":" + number + ": " + keyword + " is not supported by airlock image build"
                    + (keyword.equals("HEALTHCHECK")
                            ? " (sandboxes have no health checks); remove it"
                            : " (no image builds on this one's triggers); put the instructions in the Dockerfile"
                                    + " that uses it"));
        }
        if (!KEYWORDS.contains(keyword)) {
            throw new BuildException(file + ":" + number + ": unknown instruction '" + s.substring(0, sp)
                    + "'; airlock image build knows FROM, RUN, COPY, ADD, ENV, ARG, WORKDIR, USER, LABEL, ENTRYPOINT,"
                    + " CMD, SHELL, EXPOSE, STOPSIGNAL, VOLUME and MAINTAINER");
        }
        if (Set.of("RUN", "COPY", "ADD").contains(keyword)
                && HEREDOC.matcher(args).find()) {
            throw new BuildException(file + ":" + number + ": " + keyword + " with a here-document (<<WORD) is not"
                    + " supported by airlock image build; put the commands on the " + keyword + " line (joined with"
                    + " && and line continuations), or the file in the build context");
        }
        return new Instruction(number, keyword, args);
    }

    /** BuildKit's here-documents ({@code RUN <<EOF}): their lines would be read as instructions. */
    private static final java.util.regex.Pattern HEREDOC =
            java.util.regex.Pattern.compile("(^|\\s)<<-?[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?(\\s|$)");
}
