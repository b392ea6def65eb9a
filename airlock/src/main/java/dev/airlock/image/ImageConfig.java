package dev.airlock.image;

import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * What an OCI/Docker image's config says a container made from it should run with: the fields of
 * the image spec's {@code config} object that matter to a sandbox. Empty lists and maps, never
 * null, for what the image leaves unset; {@code user} and {@code workingDir} are "" when unset.
 *
 * <p>A sandbox made from the image takes these as defaults (see docs/images.md, "The image's
 * config"): {@code env} before the caller's {@code -e}, {@code workingDir} unless {@code -w},
 * {@code user} unless {@code -u}, and {@code entrypoint} + {@code cmd} as the command when none
 * is given (a given command replaces {@code cmd} only).
 */
public record ImageConfig(
        List<String> env,
        String workingDir,
        String user,
        List<String> entrypoint,
        List<String> cmd,
        Map<String, String> labels,
        List<String> exposedPorts,
        @Nullable String stopSignal) {

    public static final ImageConfig EMPTY =
            new ImageConfig(List.of(), "", "", List.of(), List.of(), Map.of(), List.of(), null);

    public ImageConfig {
        env = List.copyOf(env);
        entrypoint = List.copyOf(entrypoint);
        cmd = List.copyOf(cmd);
        labels = Map.copyOf(labels);
        exposedPorts = List.copyOf(exposedPorts);
    }

    /** {@code env} as a map, later entries winning, entries without '=' skipped. */
    public Map<String, String> envMap() {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        for (String kv : env) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                out.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        return out;
    }

    /** The command a sandbox runs when given none: entrypoint then cmd (Docker's rule). */
    public List<String> defaultCommand() {
        List<String> out = new java.util.ArrayList<>(entrypoint);
        out.addAll(cmd);
        return List.copyOf(out);
    }

    /** The command for a given argument list: entrypoint then the arguments (they replace cmd). */
    public List<String> command(List<String> args) {
        if (args.isEmpty()) {
            return defaultCommand();
        }
        List<String> out = new java.util.ArrayList<>(entrypoint);
        out.addAll(args);
        return List.copyOf(out);
    }
}
