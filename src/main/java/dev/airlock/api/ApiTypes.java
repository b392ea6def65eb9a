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
            @Nullable String runtime) {}

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
            int exitCode, int signal, boolean timedOut, String stdout, String stderr, boolean truncated) {}

    public record AgentEndpoint(String socket) {}

    public record Health(
            String version, long pid, String data, @Nullable String build) {}

    public record Error(String error, String kind) {}
}
