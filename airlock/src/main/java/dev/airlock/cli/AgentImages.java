package dev.airlock.cli;

import dev.airlock.build.ImageBuilder;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.workspace.AgentPreset;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.jspecify.annotations.Nullable;

/**
 * The prepared image of an agent preset: its CLI installed once, at its pinned version, by a
 * Dockerfile build ({@link AgentPreset#dockerfile}) whose only RUN steps are npm's, in a sandbox
 * that reaches only the npm registry through the egress proxy (so with the host's CAs and its
 * upstream proxy, as any sandbox). The image's name carries the Dockerfile's hash: it is built
 * once and every run of the preset starts from it, with no install and no registry traffic.
 */
final class AgentImages {
    private static final String DEFAULT_REGISTRY_HOST = "registry.npmjs.org";

    private AgentImages() {}

    /** The preset's image if it was prepared. */
    static Optional<Image> find(ImageStore store, AgentPreset preset) {
        return store.find(preset.imageName(AgentPreset.registryUrl()));
    }

    /** The preset's image, built now if it is not in the store yet. */
    static Image ensure(ImageStore store, AgentPreset preset, @Nullable String runtime) {
        Optional<Image> have = find(store, preset);
        if (have.isPresent()) {
            return have.get();
        }
        String registry = AgentPreset.registryUrl();
        String registryHost = AgentPreset.registryHost();
        String name = preset.imageName(registry);
        // The image is the same whichever runtime builds it; a preset whose install fails in
        // some runtime names one where it works.
        String buildRuntime = preset.buildRuntime() != null ? preset.buildRuntime() : runtime;
        System.err.println(
                "airlock: preparing the " + preset.name() + " agent's image " + name + " (" + preset.npmPackage()
                        + (preset.node() == null ? "" : ", Node " + preset.node()) + ", from the npm registry; once"
                        + (preset.buildRuntime() == null ? "" : "; built with --runtime " + preset.buildRuntime())
                        + ")");
        Path context;
        try {
            context = Files.createTempDirectory("airlock-agent-image-");
        } catch (IOException e) {
            throw new SandboxException("cannot make a build directory for the agent's image: " + e.getMessage());
        }
        try {
            Files.writeString(context.resolve("Dockerfile"), preset.dockerfile(registry), StandardCharsets.UTF_8);
            ImageBuilder.Request request = new ImageBuilder.Request(
                    context,
                    null,
                    name,
                    Map.of(),
                    null,
                    buildRuntime,
                    List.of(registryHost == null ? DEFAULT_REGISTRY_HOST : registryHost),
                    false);
            return new ImageBuilder(SandboxCommands.client(), store, Progress.STDERR, System.err).build(request);
        } catch (IOException e) {
            throw new SandboxException("cannot write the agent image's Dockerfile: " + e.getMessage());
        } finally {
            HostFiles.deleteTree(context);
        }
    }
}
