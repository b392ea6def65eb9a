package dev.airlock.guest;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * What to run in the guest.
 *
 * @param argv the program (looked up in the guest's PATH) and its arguments
 * @param env variables added to, and overriding, the agent's default environment; in order
 * @param cwd absolute working directory, or null for the agent's default
 * @param user a user name, {@code uid} or {@code uid:gid}, or null for the agent's own user
 * @param timeout after this the agent kills the process group, or null for none
 * @param tty run on a new pseudo-terminal of this size, or null for pipes
 * @param stdin whether the caller will feed stdin; otherwise stdin is /dev/null
 * @param builtin {@code argv[0]} names one of the agent's built-ins ({@code walk}, {@code pack},
 *     {@code unpack}: see docs/guest-protocol.md), not a program; it runs as the agent, in /
 * @param confinement limits, capabilities, seccomp and the like the agent applies to the process
 *     (an OCI container's {@code process}), or null for the agent's defaults
 */
public record ExecSpec(
        List<String> argv,
        Map<String, String> env,
        @Nullable String cwd,
        @Nullable String user,
        @Nullable Duration timeout,
        @Nullable TerminalSize tty,
        boolean stdin,
        boolean builtin,
        @Nullable ProcessConfinement confinement) {

    private static final int TAG_ARG = 1;
    private static final int TAG_ENV = 2;
    private static final int TAG_CWD = 3;
    private static final int TAG_USER = 4;
    private static final int TAG_TIMEOUT_MS = 5;
    private static final int TAG_TTY = 6;
    private static final int TAG_STDIN = 7;
    private static final int TAG_BUILTIN = 8;

    public ExecSpec {
        argv = List.copyOf(argv);
        if (argv.isEmpty()) {
            throw new IllegalArgumentException("argv must name a program");
        }
        for (String arg : argv) {
            requireNoNul("argument", arg);
        }
        // Keep the caller's order: later entries may refer to earlier ones in shell snippets.
        env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
        for (Map.Entry<String, String> entry : env.entrySet()) {
            String name = entry.getKey();
            if (name.isEmpty() || name.indexOf('=') >= 0) {
                throw new IllegalArgumentException("invalid environment variable name: '" + name + "'");
            }
            requireNoNul("environment variable " + name, name + entry.getValue());
        }
        if (cwd != null && !cwd.startsWith("/")) {
            throw new IllegalArgumentException("cwd must be absolute: " + cwd);
        }
        if (cwd != null) {
            requireNoNul("cwd", cwd);
        }
        if (user != null) {
            requireNoNul("user", user);
        }
        if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
            throw new IllegalArgumentException("timeout must be positive: " + timeout);
        }
    }

    public static ExecSpec of(String... argv) {
        return builder(argv).build();
    }

    public static Builder builder(String... argv) {
        return new Builder(List.of(argv));
    }

    public static Builder builder(List<String> argv) {
        return new Builder(argv);
    }

    /** The EXEC payload (airlock-runtime's stand-in sends it itself, read from a file). */
    public byte[] toPayload() {
        Tlv.Writer tlv = new Tlv.Writer();
        argv.forEach(arg -> tlv.string(TAG_ARG, arg));
        env.forEach((name, value) -> tlv.string(TAG_ENV, name + "=" + value));
        if (cwd != null) {
            tlv.string(TAG_CWD, cwd);
        }
        if (user != null) {
            tlv.string(TAG_USER, user);
        }
        if (timeout != null) {
            // Round up so a sub-millisecond timeout does not become "none".
            long millis = Math.max(1, timeout.plusNanos(999_999).toMillis());
            tlv.u64(TAG_TIMEOUT_MS, millis);
        }
        if (tty != null) {
            tlv.bytes(TAG_TTY, tty.toPayload());
        }
        if (stdin) {
            tlv.u8(TAG_STDIN, 1);
        }
        if (builtin) {
            tlv.u8(TAG_BUILTIN, 1);
        }
        if (confinement != null) {
            confinement.write(tlv);
        }
        return tlv.toPayload();
    }

    private static void requireNoNul(String what, String value) {
        if (value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(what + " contains a NUL character");
        }
    }

    public static final class Builder {
        private final List<String> argv;
        private final Map<String, String> env = new LinkedHashMap<>();
        private @Nullable String cwd;
        private @Nullable String user;
        private @Nullable Duration timeout;
        private @Nullable TerminalSize tty;
        private boolean stdin;
        private boolean builtin;
        private @Nullable ProcessConfinement confinement;

        private Builder(List<String> argv) {
            this.argv = new ArrayList<>(argv);
        }

        public Builder env(String name, String value) {
            env.put(name, value);
            return this;
        }

        public Builder env(Map<String, String> variables) {
            env.putAll(variables);
            return this;
        }

        public Builder cwd(@Nullable String cwd) {
            this.cwd = cwd;
            return this;
        }

        public Builder user(@Nullable String user) {
            this.user = user;
            return this;
        }

        public Builder timeout(@Nullable Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        public Builder tty(int rows, int cols) {
            this.tty = new TerminalSize(rows, cols);
            return this;
        }

        public Builder tty(@Nullable TerminalSize size) {
            this.tty = size;
            return this;
        }

        public Builder stdin(boolean stdin) {
            this.stdin = stdin;
            return this;
        }

        /** Runs the agent's built-in {@code argv[0]} instead of a program (see {@link ExecSpec}). */
        public Builder builtin(boolean builtin) {
            this.builtin = builtin;
            return this;
        }

        /** Limits, capabilities, seccomp and the like for the process (see {@link ProcessConfinement}). */
        public Builder confinement(@Nullable ProcessConfinement confinement) {
            this.confinement = confinement;
            return this;
        }

        public ExecSpec build() {
            return new ExecSpec(argv, env, cwd, user, timeout, tty, stdin, builtin, confinement);
        }
    }
}
