package dev.airlock.local;

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
import org.jspecify.annotations.Nullable;

/**
 * A create request with every default filled in: what the request says, else the project's
 * {@code airlock.toml}, else Airlock's defaults. One place decides this for every front end.
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

    static CreatePlan of(
            CreateSpec spec, ProjectConfig cfg, @Nullable Path layerTemplate, @Nullable String workdirDefault) {
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
        Map<String, String> env = new LinkedHashMap<>(cfg.env());
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
        String image = spec.image() != null ? spec.image() : cfg.image() != null ? cfg.image() : "base";
        String workdir = spec.workdir() != null ? spec.workdir() : workdirDefault;
        if (workdir != null && !workdir.startsWith("/")) {
            throw new SandboxException("the working directory '" + workdir + "' must be an absolute path, e.g. /root");
        }
        CreateOptions options = new CreateOptions(
                spec.name(),
                image,
                resources,
                env,
                workdir,
                spec.accel(),
                layerTemplate,
                spec.runtime() != null ? spec.runtime() : cfg.runtime(),
                network.nat());
        return new CreatePlan(options, network, secrets, spec.inference());
    }

    private static int first(@Nullable Integer asked, @Nullable Integer project, int fallback) {
        return asked != null ? asked : project != null ? project : fallback;
    }

    private static <T> List<T> orEmpty(@Nullable List<T> list) {
        return list == null ? List.of() : list;
    }
}
