package dev.airlock.service;

import dev.airlock.net.InferenceConfig;
import dev.airlock.net.Secret;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * What a client asks for when it creates a sandbox. Every field may be left out (null or
 * empty): the service fills in the defaults ({@code airlock.toml}'s for a workspace, then
 * Airlock's), so every front end gets the same sandbox for the same request.
 *
 * @param runtime {@code microvm}, {@code container}, ...; null for the host's default
 * @param memoryMiB guest memory
 * @param diskMiB size of the writable layer
 * @param lifetimeSeconds stop the sandbox after this long
 * @param env variables every command in the sandbox gets (a command's own win)
 * @param workdir the working directory of commands that name none
 * @param accel {@code kvm} or {@code tcg} (microVM only)
 * @param network {@code none}, {@code proxy} or {@code nat}; null: {@code proxy} when hosts are
 *     allowed, else {@code none}
 * @param allowHosts the egress allowlist
 * @param addHosts {@code NAME:IP} pins
 * @param publish {@code [HOSTIP:]HOSTPORT:GUESTPORT} ports
 * @param secrets values the guest sees only as placeholders, put into requests at the boundary
 * @param inference an OpenAI-compatible endpoint the host forwards to
 * @param hostCa whether the sandbox trusts the host's extra CAs; null: airlock.toml's, else yes
 * @param user the user of commands that name none ({@code NAME}, {@code UID}, {@code NAME:GROUP},
 *     {@code UID:GID}); null for the image's {@code USER}, else root
 * @param entrypoint replaces the image's entrypoint (and drops its cmd, as Docker's
 *     {@code --entrypoint} does); null for the image's
 * @param cmd the arguments after the entrypoint, replacing the image's cmd; null or empty for the
 *     image's. Entrypoint and cmd together are the sandbox's {@code command}, what {@code run}
 *     starts when given none
 * @param namespaces namespaces to join instead of making new ones: runtime-spec type
 *     ({@code network}, {@code ipc}, {@code uts}, {@code pid}) -> path of a namespace file (an OCI
 *     runtime's pod containers, as CRI asks); container runtime only; null or empty for none
 */
public record CreateSpec(
        @Nullable String name,
        @Nullable String image,
        @Nullable String runtime,
        @Nullable Integer cpus,
        @Nullable Integer memoryMiB,
        @Nullable Long diskMiB,
        @Nullable Integer pids,
        @Nullable Long lifetimeSeconds,
        @Nullable Map<String, String> env,
        @Nullable String workdir,
        @Nullable String accel,
        @Nullable String network,
        @Nullable List<String> allowHosts,
        @Nullable List<String> addHosts,
        @Nullable List<String> publish,
        @Nullable List<Secret> secrets,
        @Nullable InferenceConfig inference,
        @Nullable Boolean hostCa,
        @Nullable String user,
        @Nullable List<String> entrypoint,
        @Nullable List<String> cmd,
        @Nullable Map<String, String> namespaces) {

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this request's fields, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.name = name;
        b.image = image;
        b.runtime = runtime;
        b.cpus = cpus;
        b.memoryMiB = memoryMiB;
        b.diskMiB = diskMiB;
        b.pids = pids;
        b.lifetimeSeconds = lifetimeSeconds;
        b.env = env;
        b.workdir = workdir;
        b.accel = accel;
        b.network = network;
        b.allowHosts = allowHosts;
        b.addHosts = addHosts;
        b.publish = publish;
        b.secrets = secrets;
        b.inference = inference;
        b.hostCa = hostCa;
        b.user = user;
        b.entrypoint = entrypoint;
        b.cmd = cmd;
        b.namespaces = namespaces;
        return b;
    }

    /**
     * Builds a {@link CreateSpec}; what is not set is left out (null), for the service's default.
     * The one place a request is put together field by field, so a field added to the record is
     * added here and nowhere else.
     */
    public static final class Builder {
        private @Nullable String name;
        private @Nullable String image;
        private @Nullable String runtime;
        private @Nullable Integer cpus;
        private @Nullable Integer memoryMiB;
        private @Nullable Long diskMiB;
        private @Nullable Integer pids;
        private @Nullable Long lifetimeSeconds;
        private @Nullable Map<String, String> env;
        private @Nullable String workdir;
        private @Nullable String accel;
        private @Nullable String network;
        private @Nullable List<String> allowHosts;
        private @Nullable List<String> addHosts;
        private @Nullable List<String> publish;
        private @Nullable List<Secret> secrets;
        private @Nullable InferenceConfig inference;
        private @Nullable Boolean hostCa;
        private @Nullable String user;
        private @Nullable List<String> entrypoint;
        private @Nullable List<String> cmd;
        private @Nullable Map<String, String> namespaces;

        private Builder() {}

        public Builder name(@Nullable String name) {
            this.name = name;
            return this;
        }

        public Builder image(@Nullable String image) {
            this.image = image;
            return this;
        }

        public Builder runtime(@Nullable String runtime) {
            this.runtime = runtime;
            return this;
        }

        public Builder cpus(@Nullable Integer cpus) {
            this.cpus = cpus;
            return this;
        }

        public Builder memoryMiB(@Nullable Integer memoryMiB) {
            this.memoryMiB = memoryMiB;
            return this;
        }

        public Builder diskMiB(@Nullable Long diskMiB) {
            this.diskMiB = diskMiB;
            return this;
        }

        public Builder pids(@Nullable Integer pids) {
            this.pids = pids;
            return this;
        }

        public Builder lifetimeSeconds(@Nullable Long lifetimeSeconds) {
            this.lifetimeSeconds = lifetimeSeconds;
            return this;
        }

        public Builder env(@Nullable Map<String, String> env) {
            this.env = env;
            return this;
        }

        public Builder workdir(@Nullable String workdir) {
            this.workdir = workdir;
            return this;
        }

        public Builder accel(@Nullable String accel) {
            this.accel = accel;
            return this;
        }

        public Builder network(@Nullable String network) {
            this.network = network;
            return this;
        }

        public Builder allowHosts(@Nullable List<String> allowHosts) {
            this.allowHosts = allowHosts;
            return this;
        }

        public Builder addHosts(@Nullable List<String> addHosts) {
            this.addHosts = addHosts;
            return this;
        }

        public Builder publish(@Nullable List<String> publish) {
            this.publish = publish;
            return this;
        }

        public Builder secrets(@Nullable List<Secret> secrets) {
            this.secrets = secrets;
            return this;
        }

        public Builder inference(@Nullable InferenceConfig inference) {
            this.inference = inference;
            return this;
        }

        public Builder hostCa(@Nullable Boolean hostCa) {
            this.hostCa = hostCa;
            return this;
        }

        public Builder user(@Nullable String user) {
            this.user = user;
            return this;
        }

        public Builder entrypoint(@Nullable List<String> entrypoint) {
            this.entrypoint = entrypoint;
            return this;
        }

        public Builder cmd(@Nullable List<String> cmd) {
            this.cmd = cmd;
            return this;
        }

        public Builder namespaces(@Nullable Map<String, String> namespaces) {
            this.namespaces = namespaces;
            return this;
        }

        public CreateSpec build() {
            return new CreateSpec(
                    name,
                    image,
                    runtime,
                    cpus,
                    memoryMiB,
                    diskMiB,
                    pids,
                    lifetimeSeconds,
                    env,
                    workdir,
                    accel,
                    network,
                    allowHosts,
                    addHosts,
                    publish,
                    secrets,
                    inference,
                    hostCa,
                    user,
                    entrypoint,
                    cmd,
                    namespaces);
        }
    }
}
