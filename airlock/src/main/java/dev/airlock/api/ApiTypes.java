package dev.airlock.api;

import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** The request and response bodies of the API that are not sandbox records themselves. */
public final class ApiTypes {
    private ApiTypes() {}

    /** POST /v1/sandboxes. Absent fields take the defaults of {@code airlock create}. */
    public record CreateRequest(
            @Nullable String name,
            @Nullable String image,
            @Nullable Integer cpus,
            @Nullable Integer memoryMiB,
            @Nullable Long diskMiB,
            @Nullable Integer pids,
            @Nullable Long timeoutSeconds,
            @Nullable Map<String, String> env,
            @Nullable String workdir,
            @Nullable String accel,
            @Nullable String layerTemplate,
            @Nullable String runtime,
            dev.airlock.net.@Nullable NetworkSpec network,
            @Nullable List<dev.airlock.net.Secret> secrets,
            dev.airlock.net.@Nullable InferenceConfig inference) {}

    /** POST /v1/sandboxes/{ref}/ports: {@code [HOSTIP:]HOSTPORT:GUESTPORT}. */
    public record PortRequest(String publish) {}

    /** PUT /v1/sandboxes/{ref}/network: the new egress allowlist and pins of a sandbox. */
    public record PolicyRequest(
            @Nullable List<String> allowHosts, @Nullable List<String> addHosts) {}

    /**
     * POST /v1/sandboxes/{ref}/fork: {@code count} clones named REF-1 ... REF-count, or the given
     * {@code names} (then count may be omitted). Answers the clones' records.
     */
    public record ForkRequest(
            @Nullable Integer count, @Nullable List<String> names) {}

    /** POST /v1/sandboxes/{ref}/exec: a command whose output fits in memory (at most 16 MiB per stream). */
    public record ExecRequest(
            List<String> cmd,
            @Nullable Map<String, String> env,
            @Nullable String cwd,
            @Nullable String user,
            @Nullable Long timeoutMs,
            @Nullable String stdin) {}

    public record ExecResult(
            int exitCode,
            int signal,
            boolean timedOut,
            boolean oomKilled,
            String stdout,
            String stderr,
            boolean truncated) {}

    public record AgentEndpoint(String socket) {}

    public record Health(
            String version, long pid, String data, @Nullable String build) {}

    public record Error(String error, String kind) {}
}
