package dev.airlock.service;

import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * An image build ({@code airlock image build}, {@code POST /v1/images/build}): a Dockerfile whose
 * RUN steps execute in sandboxes, or, with no Dockerfile in the context and an airlock.toml with
 * an {@code [image]} table there, that recipe. Paths are the daemon host's.
 *
 * @param context the build context directory (for a recipe: the repository)
 * @param dockerfile the Dockerfile (default: {@code context/Dockerfile}); a {@code .toml} file
 *     names the recipe to build instead
 * @param tag the result's name; null: unnamed (a Dockerfile) or the recipe's name
 * @param buildArgs ARG values
 * @param target the stage to build, or null for the last
 * @param runtime the runtime of the build sandboxes, or null for the host's default
 * @param allowHosts hosts RUN steps may reach through the egress proxy; none: no network
 * @param noCache run every step again
 */
public record ImageBuildSpec(
        String context,
        @Nullable String dockerfile,
        @Nullable String tag,
        @Nullable Map<String, String> buildArgs,
        @Nullable String target,
        @Nullable String runtime,
        @Nullable List<String> allowHosts,
        boolean noCache) {
    public ImageBuildSpec {
        buildArgs = buildArgs == null ? Map.of() : Map.copyOf(buildArgs);
        allowHosts = allowHosts == null ? List.of() : List.copyOf(allowHosts);
    }
}
