package dev.airlock.sandbox;

import dev.airlock.vmm.Accel;
import java.nio.file.Path;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * What {@code airlock create} / {@code run} asks for; unset fields take the defaults. A layer
 * template (a workspace whose setup already ran) replaces the empty writable disk. {@code nat}:
 * the sandbox gets a NIC with user-mode NAT ({@code --network nat}).
 */
public record CreateOptions(
        @Nullable String name,
        String image,
        Resources resources,
        Map<String, String> env,
        @Nullable String workdir,
        @Nullable Accel accel,
        @Nullable Path layerTemplate,
        String runtime,
        boolean nat) {

    public CreateOptions(
            @Nullable String name,
            String image,
            Resources resources,
            Map<String, String> env,
            @Nullable String workdir,
            @Nullable Accel accel,
            @Nullable Path layerTemplate,
            String runtime) {
        this(name, image, resources, env, workdir, accel, layerTemplate, runtime, false);
    }

    public CreateOptions {
        env = Map.copyOf(env);
        if (!runtime.equals("microvm") && !runtime.equals("container")) {
            throw new SandboxException("unknown runtime '" + runtime + "': use microvm or container");
        }
    }

    /** The same request with everything else unchanged, in another runtime. */
    public CreateOptions inRuntime(String other) {
        return new CreateOptions(name, image, resources, env, workdir, accel, layerTemplate, other, nat);
    }

    public static CreateOptions defaults() {
        return new CreateOptions(null, "base", Resources.DEFAULT, Map.of(), null, null, null, "microvm");
    }
}
