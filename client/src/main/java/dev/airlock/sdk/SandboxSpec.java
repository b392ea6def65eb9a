package dev.airlock.sdk;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * What to create: every field may be left out for the daemon's default (a {@code base} sandbox on
 * the host's default runtime, 1 vCPU, 512 MiB, no network). Build one with {@link #builder()}.
 *
 * @param network {@code none}, {@code proxy} or {@code nat}; left out: {@code proxy} when hosts
 *     are allowed, else {@code none}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SandboxSpec(
        @Nullable String name,
        @Nullable String image,
        @Nullable String runtime,
        @Nullable Integer cpus,
        @Nullable Integer memoryMiB,
        @Nullable Long diskMiB,
        @Nullable Long lifetimeSeconds,
        @Nullable Map<String, String> env,
        @Nullable String workdir,
        @Nullable String network,
        @Nullable List<String> allowHosts) {

    public static Builder builder() {
        return new Builder();
    }

    /** Builds a {@link SandboxSpec}; unset fields take the daemon's defaults. */
    public static final class Builder {
        private @Nullable String name;
        private @Nullable String image;
        private @Nullable String runtime;
        private @Nullable Integer cpus;
        private @Nullable Integer memoryMiB;
        private @Nullable Long diskMiB;
        private @Nullable Long lifetimeSeconds;
        private final Map<String, String> env = new LinkedHashMap<>();
        private @Nullable String workdir;
        private @Nullable String network;
        private @Nullable List<String> allowHosts;

        private Builder() {}

        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /** An image name: {@code base}, {@code python}, {@code node}, or one built with {@code airlock image build}. */
        public Builder image(String image) {
            this.image = image;
            return this;
        }

        /** {@code microvm} or {@code container}. */
        public Builder runtime(String runtime) {
            this.runtime = runtime;
            return this;
        }

        public Builder cpus(int cpus) {
            this.cpus = cpus;
            return this;
        }

        public Builder memoryMiB(int memoryMiB) {
            this.memoryMiB = memoryMiB;
            return this;
        }

        public Builder diskMiB(long diskMiB) {
            this.diskMiB = diskMiB;
            return this;
        }

        /** Stop the sandbox after this many seconds. */
        public Builder lifetimeSeconds(long seconds) {
            this.lifetimeSeconds = seconds;
            return this;
        }

        /** A variable every command in the sandbox gets (a command's own win). */
        public Builder env(String name, String value) {
            env.put(name, value);
            return this;
        }

        /** The working directory of commands that name none. */
        public Builder workdir(String workdir) {
            this.workdir = workdir;
            return this;
        }

        public Builder network(String network) {
            this.network = network;
            return this;
        }

        /** The egress allowlist (host names, {@code *.example.com} wildcards). */
        public Builder allowHosts(List<String> hosts) {
            this.allowHosts = List.copyOf(hosts);
            return this;
        }

        public SandboxSpec build() {
            return new SandboxSpec(
                    name,
                    image,
                    runtime,
                    cpus,
                    memoryMiB,
                    diskMiB,
                    lifetimeSeconds,
                    env.isEmpty() ? null : Map.copyOf(env),
                    workdir,
                    network,
                    allowHosts);
        }
    }
}
