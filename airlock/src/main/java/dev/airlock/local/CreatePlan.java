package dev.airlock.local;

import dev.airlock.host.NamespaceFile;
import dev.airlock.image.ImageConfig;
import dev.airlock.net.InferenceConfig;
import dev.airlock.net.NetworkSpec;
import dev.airlock.net.Secret;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.CreateSpec;
import dev.airlock.workspace.ProjectConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * A create request with every default filled in: what the request says, else the project's
 * {@code airlock.toml}, else the image's config (its {@code Env}, {@code WorkingDir},
 * {@code User}, {@code Entrypoint} and {@code Cmd}, as Docker applies them), else Airlock's
 * defaults. One place decides this for every front end.
 *
 * @param options what the engine needs
 * @param network the sandbox's network settings, kept beside it
 * @param secrets values the guest sees only as placeholders
 * @param inference the inference bridge's settings, or null
 */
record CreatePlan(
        CreateOptions options,
        NetworkSpec network,
        List<Secret> secrets,
        @Nullable InferenceConfig inference) {

    /** A user as Docker's {@code USER} and {@code -u} take it: a name or number, optionally {@code :GROUP}. */
    private static final Pattern USER =
            Pattern.compile("[A-Za-z0-9_.][A-Za-z0-9_.-]{0,127}(:[A-Za-z0-9_.][A-Za-z0-9_.-]{0,127})?");

    /** The image a request boots: its own, else the project's, else {@code base}. */
    static String imageOf(CreateSpec spec, ProjectConfig cfg) {
        return spec.image() != null ? spec.image() : cfg.image() != null ? cfg.image() : "base";
    }

    /**
     * The plan for {@code spec}. {@code imageConfig} is the config of the image {@link #imageOf}
     * names ({@link ImageConfig#EMPTY} for one built from packages).
     */
    static CreatePlan of(
            CreateSpec spec,
            ProjectConfig cfg,
            @Nullable Path layerTemplate,
            @Nullable String workdirDefault,
            ImageConfig imageConfig) {
        Resources d = Resources.DEFAULT;
        Resources resources = new Resources(
                first(spec.cpus(), cfg.cpus(), d.cpus()),
                spec.memoryMiB() != null
                        ? spec.memoryMiB()
                        : cfg.memory() != null ? Math.toIntExact(Resources.parseMiB(cfg.memory())) : d.memoryMiB(),
                spec.diskMiB() != null
                        ? spec.diskMiB()
                        : cfg.disk() != null ? Resources.parseMiB(cfg.disk()) : d.diskMiB(),
                first(spec.pids(), null, d.pids()),
                spec.lifetimeSeconds() != null ? Duration.ofSeconds(spec.lifetimeSeconds()) : null);
        // the image's variables (PATH included, which then replaces the agent's) under the project's and the request's
        Map<String, String> env = new LinkedHashMap<>(imageConfig.envMap());
        env.putAll(cfg.env());
        if (spec.env() != null) {
            env.putAll(spec.env());
        }
        List<String> allow = new ArrayList<>(cfg.allowHosts());
        allow.addAll(orEmpty(spec.allowHosts()));
        List<String> pins = new ArrayList<>(cfg.addHosts());
        pins.addAll(orEmpty(spec.addHosts()));
        String mode = spec.network() != null
                ? spec.network()
                : cfg.networkMode() != null ? cfg.networkMode() : allow.isEmpty() ? "none" : "proxy";
        Boolean hostCa = spec.hostCa() != null ? spec.hostCa() : cfg.hostCa();
        NetworkSpec network = new NetworkSpec(mode, allow, pins, orEmpty(spec.publish()), hostCa == null || hostCa);
        List<Secret> secrets = orEmpty(spec.secrets());
        if (!secrets.isEmpty() && !network.proxy()) {
            throw new SandboxException("--secret needs --network proxy: the egress proxy puts the real value in");
        }
        String image = imageOf(spec, cfg);
        String imageWorkdir = imageConfig.workingDir().isEmpty()
                ? null
                : imageConfig.workingDir().startsWith("/") ? imageConfig.workingDir() : "/" + imageConfig.workingDir();
        String workdir =
                spec.workdir() != null ? spec.workdir() : workdirDefault != null ? workdirDefault : imageWorkdir;
        if (workdir != null && !workdir.startsWith("/")) {
            throw new SandboxException("the working directory '" + workdir + "' must be an absolute path, e.g. /root");
        }
        String user = spec.user() != null && !spec.user().isEmpty()
                ? spec.user()
                : imageConfig.user().isEmpty() ? null : imageConfig.user();
        if (user != null && !USER.matcher(user).matches()) {
            throw new SandboxException("invalid user '" + user + "'"
                    + (spec.user() != null ? "" : " (the image's USER)")
                    + ": give NAME, UID, NAME:GROUP or UID:GID");
        }
        Map<String, String> namespaces = namespaces(spec, network);
        CreateOptions options = CreateOptions.builder()
                .name(spec.name())
                .image(image)
                .resources(resources)
                .env(env)
                .workdir(workdir)
                .accel(spec.accel())
                .layerTemplate(layerTemplate)
                .runtime(spec.runtime() != null ? spec.runtime() : cfg.runtime())
                .nat(network.nat())
                .user(user)
                .command(command(spec, imageConfig))
                .namespaces(namespaces)
                .build();
        return new CreatePlan(options, network, secrets, spec.inference());
    }

    /**
     * The namespaces a request joins, each checked to be a namespace file of its type and not
     * the host's own ({@link NamespaceFile}). A joined network namespace is the network: the
     * sandbox then has no network of Airlock's (no proxy, no NAT) to add to it.
     */
    private static Map<String, String> namespaces(CreateSpec spec, NetworkSpec network) {
        Map<String, String> asked = spec.namespaces() == null ? Map.of() : spec.namespaces();
        for (Map.Entry<String, String> e : asked.entrySet()) {
            try {
                NamespaceFile.check(e.getKey(), e.getValue());
            } catch (IllegalArgumentException bad) {
                throw new SandboxException("cannot join the " + e.getKey() + " namespace: " + bad.getMessage());
            }
        }
        if (asked.containsKey("network") && !network.mode().equals("none")) {
            throw new SandboxException("a sandbox that joins a network namespace has that network:"
                    + " give no --network (or none), not " + network.mode());
        }
        return asked;
    }

    /**
     * Docker's rule: the entrypoint (the request's, else the image's) followed by the request's
     * cmd, else the image's cmd; a request that replaces the entrypoint drops the image's cmd.
     */
    static List<String> command(CreateSpec spec, ImageConfig image) {
        List<String> cmd = orEmpty(spec.cmd());
        if (spec.entrypoint() != null) {
            List<String> out = new ArrayList<>(spec.entrypoint());
            out.addAll(cmd);
            return out;
        }
        return image.command(cmd);
    }

    private static int first(@Nullable Integer asked, @Nullable Integer project, int fallback) {
        return asked != null ? asked : project != null ? project : fallback;
    }

    private static <T> List<T> orEmpty(@Nullable List<T> list) {
        return list == null ? List.of() : list;
    }
}
