package dev.airlock.sdk;

import dev.airlock.sdk.http.DaemonHttp;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.JsonNode;

/** The daemon's sandboxes: create, list, look up. */
public final class Sandboxes {
    private final Airlock airlock;

    Sandboxes(Airlock airlock) {
        this.airlock = airlock;
    }

    /** Creates a sandbox and starts it; returns once its agent answers. */
    public Sandbox create(SandboxSpec spec) {
        SandboxInfo made = airlock.call("POST", "/v1/sandboxes", spec, SandboxInfo.class);
        try {
            return new Sandbox(
                    airlock, airlock.call("POST", Airlock.sandboxPath(made.id()) + "/start", null, SandboxInfo.class));
        } catch (AirlockException e) {
            // Not left half made: a sandbox that cannot start is removed.
            try {
                airlock.raw("DELETE", Airlock.sandboxPath(made.id()) + "?force=true", null);
            } catch (AirlockException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /**
     * Creates a sandbox with a copy of a host git repository in {@code /workspace} and starts it;
     * its commits come back with {@link Sandbox#pull()}. The repository is a path on the daemon's
     * host; its {@code airlock.toml} gives defaults for what {@code spec} leaves out, and its
     * setup commands run before this returns.
     *
     * @param uncommitted bring the repository's uncommitted and untracked files too
     */
    public Sandbox createWorkspace(Path repo, SandboxSpec spec, boolean uncommitted) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("repo", repo.toAbsolutePath().toString());
        body.put("uncommitted", uncommitted);
        body.put("sandbox", spec);
        body.put("start", true);
        byte[] bytes = Airlock.JSON.writeValueAsBytes(body);
        // The answer is JSON lines (progress while setup runs), ending in 'done' or 'error'.
        try (DaemonHttp.Response r =
                        Airlock.checked(airlock.http().send("POST", "/v1/workspaces", bytes, "application/json"));
                BufferedReader lines = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode e = Airlock.JSON.readTree(line);
                switch (e.path("type").asString("")) {
                    case "done" -> {
                        return new Sandbox(airlock, Airlock.JSON.treeToValue(e.get("sandbox"), SandboxInfo.class));
                    }
                    case "error" ->
                        throw new AirlockException(
                                e.path("error").path("kind").asString("FAILED"),
                                200,
                                e.path("error").path("error").asString("the workspace was not made"));
                    default -> {
                        // progress: steps and setup output
                    }
                }
            }
            throw new AirlockException("FAILED", 0, "the daemon ended the workspace's answer without its sandbox");
        } catch (IOException e) {
            throw airlock.unreachable("POST /v1/workspaces", e);
        }
    }

    /** Every sandbox, oldest first. */
    public List<Sandbox> list() {
        List<SandboxInfo> all = airlock.call("GET", "/v1/sandboxes", null, new TypeReference<List<SandboxInfo>>() {});
        return all.stream().map(i -> new Sandbox(airlock, i)).toList();
    }

    /** A sandbox by name, id or unambiguous id prefix; {@code NOT_FOUND} when there is none. */
    public Sandbox get(String name) {
        return new Sandbox(airlock, airlock.call("GET", Airlock.sandboxPath(name), null, SandboxInfo.class));
    }
}
