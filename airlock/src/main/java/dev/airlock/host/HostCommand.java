package dev.airlock.host;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;

/**
 * Runs a host program to completion. Output lines can be streamed to a progress sink while they
 * are also kept (bounded) for the error message, so a failed build says what went wrong.
 */
public final class HostCommand {
    private static final int KEEP_BYTES = 64 * 1024;

    private HostCommand() {}

    public record Result(int exitCode, String output) {
        public boolean ok() {
            return exitCode == 0;
        }
    }

    /** Runs and returns the combined output; never throws for a non-zero exit. */
    public static Result run(List<String> argv, @Nullable Path dir, @Nullable Consumer<String> lines) {
        return run(argv, dir, lines, java.util.Map.of());
    }

    /** As {@link #run(List, Path, Consumer)}, with extra environment variables. */
    public static Result run(
            List<String> argv,
            @Nullable Path dir,
            @Nullable Consumer<String> lines,
            java.util.Map<String, String> env) {
        return run(argv, dir, lines, env, null);
    }

    /** As {@link #run(List, Path, Consumer, java.util.Map)}, with {@code stdin} as the program's input. */
    public static Result run(
            List<String> argv,
            @Nullable Path dir,
            @Nullable Consumer<String> lines,
            java.util.Map<String, String> env,
            byte @Nullable [] stdin) {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
        pb.environment().putAll(env);
        if (dir != null) {
            pb.directory(dir.toFile());
        }
        if (stdin == null) {
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
        }
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            return new Result(127, "cannot run " + argv.getFirst() + ": " + e.getMessage());
        }
        if (stdin != null) {
            // Written from a thread of its own: a program that talks before it has read all its
            // input must not wait on us while we wait on it.
            Thread.ofVirtual().start(() -> {
                try (var in = p.getOutputStream()) {
                    in.write(stdin);
                } catch (IOException ignored) {
                    // The program exited without reading it all; its exit code says why.
                }
            });
        }
        String out = drain(p.getInputStream(), lines);
        try {
            return new Result(p.waitFor(), out);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            return new Result(130, out + "\ninterrupted");
        }
    }

    /** Runs and returns stdout+stderr, throwing {@link HostCommandException} on a non-zero exit. */
    public static String check(List<String> argv) {
        Result r = run(argv, null, null);
        if (!r.ok()) {
            throw new HostCommandException(argv, r);
        }
        return r.output();
    }

    private static String drain(InputStream in, @Nullable Consumer<String> lines) {
        ByteArrayOutputStream kept = new ByteArrayOutputStream();
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        try (in) {
            for (int n; (n = in.read(buf)) > 0; ) {
                if (kept.size() < KEEP_BYTES) {
                    kept.write(buf, 0, Math.min(n, KEEP_BYTES - kept.size()));
                }
                if (lines != null) {
                    for (int i = 0; i < n; i++) {
                        if (buf[i] == '\n') {
                            lines.accept(line.toString(StandardCharsets.UTF_8));
                            line.reset();
                        } else {
                            line.write(buf[i]);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (lines != null && line.size() > 0) {
            lines.accept(line.toString(StandardCharsets.UTF_8));
        }
        return kept.toString(StandardCharsets.UTF_8);
    }

    /** A host program failed; the message carries the tail of its output. */
    public static final class HostCommandException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public HostCommandException(List<String> argv, Result r) {
            super(argv.getFirst() + " failed (exit " + r.exitCode() + "): " + tail(r.output()));
        }

        private static String tail(String s) {
            String t = s.strip();
            return t.length() > 2000 ? "..." + t.substring(t.length() - 2000) : t;
        }
    }
}
