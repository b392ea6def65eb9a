package dev.airlock.sdk;

import dev.airlock.sdk.http.DaemonHttp;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;

/**
 * The daemon's image store: pull from a registry, build from a Dockerfile or an airlock.toml
 * recipe. Both run in the daemon (paths and registry logins are its host's and its user's); RUN
 * steps execute in sandboxes, never on the host.
 */
public final class Images {
    /** An image the daemon stored: its name (its id when unnamed), id and size in bytes. */
    public record Image(String name, String id, long sizeBytes) {}

    private final Airlock airlock;

    Images(Airlock airlock) {
        this.airlock = airlock;
    }

    /** Pulls {@code reference} ({@code [REGISTRY/]REPOSITORY[:TAG][@DIGEST]}); {@code progress} gets each step. */
    public Image pull(String reference, Consumer<String> progress) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("reference", reference);
        return work("/v1/images/pull", body, progress, out -> {});
    }

    /**
     * Builds the context directory's Dockerfile (or its airlock.toml recipe) as {@code tag} (null:
     * unnamed, or the recipe's name); {@code runtime} null for the host's default. {@code
     * progress} gets the steps, {@code output} what RUN steps print. A failing step throws with
     * its exit status and the end of its output.
     */
    public Image build(
            Path context,
            @Nullable String tag,
            @Nullable String runtime,
            Consumer<String> progress,
            Consumer<byte[]> output) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("context", context.toAbsolutePath().toString());
        body.put("tag", tag);
        body.put("runtime", runtime);
        return work("/v1/images/build", body, progress, output);
    }

    /** The answer is JSON lines (steps, output) ending in one 'done' or 'error'. */
    private Image work(String path, Map<String, Object> body, Consumer<String> progress, Consumer<byte[]> output) {
        byte[] bytes = Airlock.JSON.writeValueAsBytes(body);
        try (DaemonHttp.Response r = Airlock.checked(airlock.http().send("POST", path, bytes, "application/json"));
                BufferedReader lines = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode e = Airlock.JSON.readTree(line);
                switch (e.path("type").asString("")) {
                    case "step" -> progress.accept(e.path("message").asString(""));
                    case "output" ->
                        output.accept(Base64.getDecoder().decode(e.path("data").asString("")));
                    case "done" -> {
                        return Airlock.JSON.treeToValue(e.get("image"), Image.class);
                    }
                    case "error" ->
                        throw new AirlockException(
                                e.path("error").path("kind").asString("FAILED"),
                                200,
                                e.path("error").path("error").asString("the image was not made"));
                    default -> {
                        // a newer daemon's event
                    }
                }
            }
            throw new AirlockException(
                    "FAILED", 0, "the daemon ended the answer to POST " + path + " without the image");
        } catch (IOException e) {
            throw airlock.unreachable("POST " + path, e);
        }
    }
}
