package dev.airlock.ociruntime;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;

/**
 * A config's POSIX-platform hooks (runtime-spec config.md) that run on the host, in the runtime's
 * namespaces: {@code createRuntime} and {@code prestart} once the container's sandbox exists and
 * before its process can start, {@code poststart} after {@code start}, {@code poststop} after
 * {@code delete}. Each gets the container's state JSON on stdin and runs with its own timeout.
 * {@code createContainer} and {@code startContainer} run in the container's namespaces, which
 * are a VM's or a sandbox's, not the host's: refused in words.
 */
record Hooks(List<Hook> createRuntime, List<Hook> prestart, List<Hook> poststart, List<Hook> poststop) {

    /** A hook without a timeout of its own gets this one, so a stuck program cannot hold a create forever. */
    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    /** What is kept of a failing hook's output for the error. */
    private static final int OUTPUT_TAIL = 2048;

    static final Hooks NONE = new Hooks(List.of(), List.of(), List.of(), List.of());

    Hooks {
        createRuntime = List.copyOf(createRuntime);
        prestart = List.copyOf(prestart);
        poststart = List.copyOf(poststart);
        poststop = List.copyOf(poststop);
    }

    /**
     * One hook.
     *
     * @param path the program, an absolute host path
     * @param args its arguments after argv[0] (argv[0] is the path: a JVM cannot set it apart)
     * @param env its whole environment ({@code NAME=VALUE}), or null for the runtime's
     * @param timeoutSeconds how long it may run
     */
    record Hook(String path, List<String> args, @Nullable List<String> env, long timeoutSeconds) {
        Hook {
            args = List.copyOf(args);
            env = env == null ? null : List.copyOf(env);
        }
    }

    static Hooks read(JsonNode hooks) {
        if (hooks.isMissingNode() || hooks.isNull()) {
            return NONE;
        }
        if (!hooks.isObject()) {
            throw new RuntimeError("config.json: hooks must be an object");
        }
        Set<String> known =
                Set.of("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop");
        for (String k : hooks.propertyNames()) {
            if (!known.contains(k)) {
                throw BundleConfig.refused("hooks." + k, "not a runtime-spec hook");
            }
        }
        for (String inside : List.of("createContainer", "startContainer")) {
            if (!hooks.path(inside).isEmpty()) {
                throw BundleConfig.refused(
                        "hooks." + inside,
                        "these hooks run in the container's namespaces, which are its VM's or sandbox's, and"
                                + " airlock-runtime runs no host program there (use createRuntime, prestart,"
                                + " poststart or poststop, which run on the host)");
            }
        }
        return new Hooks(
                list(hooks.path("createRuntime"), "hooks.createRuntime"),
                list(hooks.path("prestart"), "hooks.prestart"),
                list(hooks.path("poststart"), "hooks.poststart"),
                list(hooks.path("poststop"), "hooks.poststop"));
    }

    private static List<Hook> list(JsonNode list, String where) {
        List<Hook> out = new ArrayList<>();
        if (list.isMissingNode() || list.isNull()) {
            return out;
        }
        if (!list.isArray()) {
            throw new RuntimeError("config.json: " + where + " must be an array");
        }
        int i = 0;
        for (JsonNode h : list) {
            String at = where + "[" + i++ + "]";
            if (!h.isObject()) {
                throw new RuntimeError("config.json: " + at + " must be an object");
            }
            for (String k : h.propertyNames()) {
                if (!Set.of("path", "args", "env", "timeout").contains(k)) {
                    throw BundleConfig.refused(at + "." + k, "not a field of a hook");
                }
            }
            String path = h.path("path").asString("");
            if (!path.startsWith("/")) {
                throw new RuntimeError("config.json: " + at + ".path '" + path + "' is not an absolute path");
            }
            List<String> args = new ArrayList<>();
            h.path("args").forEach(a -> args.add(a.asString()));
            List<String> env = null;
            if (h.has("env")) {
                env = new ArrayList<>();
                for (JsonNode e : h.path("env")) {
                    String s = e.asString("");
                    if (s.indexOf('=') <= 0) {
                        throw new RuntimeError("config.json: " + at + ".env entry '" + s + "' is not NAME=VALUE");
                    }
                    env.add(s);
                }
            }
            long timeout = DEFAULT_TIMEOUT.toSeconds();
            if (h.has("timeout")) {
                timeout = h.get("timeout").asLong(0);
                if (!h.get("timeout").isIntegralNumber() || timeout <= 0) {
                    throw new RuntimeError("config.json: " + at + ".timeout must be a number of seconds above 0");
                }
            }
            out.add(new Hook(path, args.isEmpty() ? args : args.subList(1, args.size()), env, timeout));
        }
        return out;
    }

    boolean hasNone() {
        return createRuntime.isEmpty() && prestart.isEmpty() && poststart.isEmpty() && poststop.isEmpty();
    }

    /**
     * Runs {@code hooks} in order with {@code state} on stdin, in {@code dir}; the first that fails
     * (exits non-zero, cannot start, outlives its timeout) stops the rest and is the error.
     */
    static void run(String phase, List<Hook> hooks, String state, Path dir) {
        for (int i = 0; i < hooks.size(); i++) {
            Hook h = hooks.get(i);
            String name = "hooks." + phase + "[" + i + "] " + h.path();
            List<String> argv = new ArrayList<>();
            argv.add(h.path());
            argv.addAll(h.args());
            ProcessBuilder pb = new ProcessBuilder(argv).directory(dir.toFile()).redirectErrorStream(true);
            if (h.env() != null) {
                Map<String, String> env = pb.environment();
                env.clear();
                for (String e : h.env()) {
                    int eq = e.indexOf('=');
                    env.put(e.substring(0, eq), e.substring(eq + 1));
                }
            }
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                throw new RuntimeError(name + " cannot start: " + e.getMessage(), e);
            }
            ByteArrayOutputStream tail = new ByteArrayOutputStream();
            Thread reader = Thread.ofVirtual().start(() -> keepTail(p.getInputStream(), tail));
            try (OutputStream in = p.getOutputStream()) {
                in.write(state.getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                // a hook need not read its stdin: a closed pipe is its business
            }
            try {
                if (!p.waitFor(h.timeoutSeconds(), TimeUnit.SECONDS)) {
                    p.descendants().forEach(ProcessHandle::destroyForcibly);
                    p.destroyForcibly();
                    p.waitFor();
                    throw new RuntimeError(name + " did not finish within its timeout of " + h.timeoutSeconds() + " s");
                }
                reader.join(Duration.ofSeconds(5));
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new RuntimeError("interrupted while running " + name, e);
            }
            if (p.exitValue() != 0) {
                String out;
                synchronized (tail) {
                    out = tail.toString(StandardCharsets.UTF_8).strip();
                }
                throw new RuntimeError(
                        name + " failed with exit status " + p.exitValue() + (out.isEmpty() ? "" : ": " + out));
            }
        }
    }

    /** Reads a hook's output to its end, keeping the last {@link #OUTPUT_TAIL} bytes. */
    private static void keepTail(InputStream in, ByteArrayOutputStream tail) {
        byte[] buf = new byte[4096];
        try (in) {
            int n;
            while ((n = in.read(buf)) > 0) {
                synchronized (tail) {
                    tail.write(buf, 0, n);
                    if (tail.size() > 2 * OUTPUT_TAIL) {
                        byte[] all = tail.toByteArray();
                        tail.reset();
                        tail.write(all, all.length - OUTPUT_TAIL, OUTPUT_TAIL);
                    }
                }
            }
        } catch (IOException e) {
            // the hook's output is only for its error message
        }
    }
}
