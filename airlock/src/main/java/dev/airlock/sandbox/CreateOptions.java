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

    public CreateOptions(
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
            List<String> command) {
        this(name, image, resources, env, workdir, accel, layerTemplate, runtime, nat, user, command, Map.of());
    }

    public CreateOptions(
            @Nullable String name,
            String image,
            Resources resources,
            Map<String, String> env,
            @Nullable String workdir,
            @Nullable String accel,
            @Nullable Path layerTemplate,
            @Nullable String runtime,
            boolean nat) {
        this(name, image, resources, env, workdir, accel, layerTemplate, runtime, nat, null, List.of());
    }

    public CreateOptions(
            @Nullable String name,
            String image,
            Resources resources,
            Map<String, String> env,
            @Nullable String workdir,
            @Nullable String accel,
            @Nullable Path layerTemplate,
            @Nullable String runtime) {
        this(name, image, resources, env, workdir, accel, layerTemplate, runtime, false);
    }

    public CreateOptions {
        env = Map.copyOf(env);
        command = List.copyOf(command);
        namespaces = Map.copyOf(namespaces);
    }

    /** The same request with everything else unchanged, in another runtime. */
    public CreateOptions inRuntime(String other) {
        return new CreateOptions(
                name, image, resources, env, workdir, accel, layerTemplate, other, nat, user, command, namespaces);
    }

    /** The same request for a sandbox of another name. */
    public CreateOptions withName(@Nullable String other) {
        return new CreateOptions(
                other, image, resources, env, workdir, accel, layerTemplate, runtime, nat, user, command, namespaces);
    }

    public static CreateOptions defaults() {
        return new CreateOptions(null, "base", Resources.DEFAULT, Map.of(), null, null, null, null);
    }
}
