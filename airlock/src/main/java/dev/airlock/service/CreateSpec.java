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

    /** A request that joins no namespaces: each sandbox has its own. */
    public CreateSpec(
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
            @Nullable List<String> cmd) {
        this(
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
                null);
    }

    /** A request without a choice about the host's CAs, nor a user, entrypoint or cmd: the defaults and the image's apply. */
    public CreateSpec(
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
            @Nullable InferenceConfig inference) {
        this(
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
                null,
                null,
                null,
                null);
    }

    /** All defaults: a {@code base} sandbox on the host's default runtime, no network. */
    public static CreateSpec defaults() {
        return new CreateSpec(
                null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null);
    }

    public CreateSpec withName(@Nullable String newName) {
        return new CreateSpec(
                newName,
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

    public CreateSpec withRuntime(@Nullable String newRuntime) {
        return new CreateSpec(
                name,
                image,
                newRuntime,
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

    public CreateSpec withImage(@Nullable String newImage) {
        return new CreateSpec(
                name,
                newImage,
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

    public CreateSpec withEnv(Map<String, String> newEnv) {
        return new CreateSpec(
                name,
                image,
                runtime,
                cpus,
                memoryMiB,
                diskMiB,
                pids,
                lifetimeSeconds,
                newEnv,
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

    public CreateSpec withUser(@Nullable String newUser) {
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
                newUser,
                entrypoint,
                cmd,
                namespaces);
    }

    public CreateSpec withCommand(@Nullable List<String> newCmd) {
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
                newCmd,
                namespaces);
    }
}
