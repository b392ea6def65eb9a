package dev.airlock.sdk;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * A command to run in a sandbox: the program (looked up in the sandbox's {@code PATH}) and its
 * arguments, with what it runs with. {@code Command.of("ls", "-l")}, or
 * {@code Command.builder("sh", "-c", "make test").env("CI", "1").cwd("/workspace").build()}.
 *
 * @param user a user name, uid or uid:gid; null for root
 * @param timeoutMs kill the command after this long; null for never
 * @param stdinBytes fed to the command's stdin by {@link Sandbox#exec(Command)} (which then closes it)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Command(
        List<String> cmd,
        @Nullable Map<String, String> env,
        @Nullable String cwd,
        @Nullable String user,
        @Nullable Long timeoutMs,
        @JsonIgnore byte @Nullable [] stdinBytes) {

    public Command {
        cmd = List.copyOf(cmd);
        if (cmd.isEmpty()) {
            throw new IllegalArgumentException("a command needs a program");
        }
        env = env == null ? null : Map.copyOf(env);
    }

    public static Command of(String... argv) {
        return builder(argv).build();
    }

    public static Builder builder(String... argv) {
        return new Builder(List.of(argv));
    }

    public static Builder builder(List<String> argv) {
        return new Builder(argv);
    }

    /** Builds a {@link Command}. */
    public static final class Builder {
        private final List<String> argv;
        private final Map<String, String> env = new LinkedHashMap<>();
        private @Nullable String cwd;
        private @Nullable String user;
        private @Nullable Long timeoutMs;
        private byte @Nullable [] stdin;

        private Builder(List<String> argv) {
            this.argv = List.copyOf(argv);
        }

        public Builder env(String name, String value) {
            env.put(name, value);
            return this;
        }

        /** An absolute directory in the sandbox. */
        public Builder cwd(String cwd) {
            this.cwd = cwd;
            return this;
        }

        public Builder user(String user) {
            this.user = user;
            return this;
        }

        public Builder timeout(Duration timeout) {
            this.timeoutMs = Math.max(1, timeout.toMillis());
            return this;
        }

        /** Bytes for the command's stdin (blocking {@link Sandbox#exec(Command)} only). */
        public Builder stdin(byte[] bytes) {
            this.stdin = bytes.clone();
            return this;
        }

        public Builder stdin(String text) {
            return stdin(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }

        public Command build() {
            return new Command(argv, env.isEmpty() ? null : env, cwd, user, timeoutMs, stdin);
        }
    }
}
