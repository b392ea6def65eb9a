package dev.airlock.sandbox;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * What the engine needs to create a sandbox; the service fills it from a request. A layer
 * template (a workspace whose setup already ran) replaces the empty writable disk.
 *
 * @param runtime the backend's name, or null for the host's default
 * @param accel {@code kvm} or {@code tcg} for a microVM, or null for what this host was found to run
 * @param nat whether the sandbox gets a NIC with user-mode NAT ({@code --network nat})
 * @param user the user of commands that name none, or null for root
 * @param command what {@code run} starts when given no command (empty: nothing)
 * @param namespaces namespaces joined by path instead of new ones: runtime-spec type -> path
 *     (checked by the service, {@link dev.airlock.host.NamespaceFile})
 */
public record CreateOptions(
        @Nullable String name,
        String image,
        Resources resources,
        Map<String, String> env,
        @Nullable String workdir,
        @Nullable String accel,
        @Nullable Path layerTemplate,
        @Nullable String runtime,
        boolean nat,
        @Nullable String user,
        List<String> command,
        Map<String, String> namespaces) {

    public CreateOptions {
        env = Map.copyOf(env);
        command = List.copyOf(command);
        namespaces = Map.copyOf(namespaces);
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Builds {@link CreateOptions}, starting from the defaults (a {@code base} sandbox of default
     * resources on the host's default runtime): the one place the options are put together field
     * by field.
     */
    public static final class Builder {
        private @Nullable String name;
        private String image = "base";
        private Resources resources = Resources.DEFAULT;
        private Map<String, String> env = Map.of();
        private @Nullable String workdir;
        private @Nullable String accel;
        private @Nullable Path layerTemplate;
        private @Nullable String runtime;
        private boolean nat;
        private @Nullable String user;
        private List<String> command = List.of();
        private Map<String, String> namespaces = Map.of();

        private Builder() {}

        public Builder name(@Nullable String name) {
            this.name = name;
            return this;
        }

        public Builder image(String image) {
            this.image = image;
            return this;
        }

        public Builder resources(Resources resources) {
            this.resources = resources;
            return this;
        }

        public Builder env(Map<String, String> env) {
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

        public Builder layerTemplate(@Nullable Path layerTemplate) {
            this.layerTemplate = layerTemplate;
            return this;
        }

        public Builder runtime(@Nullable String runtime) {
            this.runtime = runtime;
            return this;
        }

        public Builder nat(boolean nat) {
            this.nat = nat;
            return this;
        }

        public Builder user(@Nullable String user) {
            this.user = user;
            return this;
        }

        public Builder command(List<String> command) {
            this.command = command;
            return this;
        }

        public Builder namespaces(Map<String, String> namespaces) {
            this.namespaces = namespaces;
            return this;
        }

        public CreateOptions build() {
            return new CreateOptions(
                    name,
                    image,
                    resources,
                    env,
                    workdir,
                    accel,
                    layerTemplate,
                    runtime,
                    nat,
                    user,
                    command,
                    namespaces);
        }
    }
}
