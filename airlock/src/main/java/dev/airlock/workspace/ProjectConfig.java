package dev.airlock.workspace;

import dev.airlock.image.ImageException;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.toml.TomlMapper;

/**
 * A repository's {@code airlock.toml}: what its sandboxes start from and how its dependencies
 * get installed. Every table and key is checked, so a typo is an error naming the key, not a
 * silently ignored setting. See docs/airlock-toml.md.
 *
 * <pre>
 * [sandbox]                       # defaults for sandboxes of this repo
 * image = "python"                # or the name of the [image] below
 * runtime = "gvisor"              # microvm, gvisor or container (default: what the host isolates best)
 * cpus = 2
 * memory = "1g"
 * disk = "8g"
 * env = { PYTHONUNBUFFERED = "1" }
 *
 * [setup]                         # runs once per distinct content of the key files
 * run = ["python3 -m venv .venv", ".venv/bin/pip install -r requirements.txt"]
 * keys = ["requirements.txt"]     # the lockfiles whose content keys the cached result
 *
 * [network]                       # egress: see docs/networking.md
 * mode = "proxy"
 * allow_hosts = ["pypi.org", "*.pythonhosted.org"]
 * host_ca = false                 # do not add the host's extra CAs (default: added)
 *
 * [agent]                         # what `airlock run --agent` starts in the workspace
 * command = ["python3", "agent.py"]
 * preset = "claude"               # or a known agent instead of a command: airlock agent ls
 * env = ["OPENAI_API_KEY"]        # host variables passed in explicitly, nothing else is
 * </pre>
 */
public record ProjectConfig(
        @Nullable String image,
        @Nullable String runtime,
        @Nullable Integer cpus,
        @Nullable String memory,
        @Nullable String disk,
        Map<String, String> env,
        List<String> setup,
        List<String> setupKeys,
        List<String> agentCommand,
        List<String> agentEnv,
        @Nullable String networkMode,
        List<String> allowHosts,
        List<String> addHosts,
        @Nullable Boolean hostCa,
        @Nullable String agentPreset) {

    private static final Set<String> TABLES = Set.of("image", "sandbox", "setup", "agent", "network");
    private static final Set<String> NETWORK_KEYS = Set.of("mode", "allow_hosts", "add_hosts", "host_ca");
    private static final Set<String> SANDBOX_KEYS = Set.of("image", "runtime", "cpus", "memory", "disk", "env");
    private static final Set<String> SETUP_KEYS = Set.of("run", "keys");
    private static final Set<String> AGENT_KEYS = Set.of("command", "env", "preset");

    public static ProjectConfig none() {
        return new ProjectConfig(
                null, null, null, null, null, Map.of(), List.of(), List.of(), List.of(), List.of(), null, List.of(),
                List.of(), null, null);
    }

    /** The repo's airlock.toml, or {@link #none()} when it has none. */
    public static ProjectConfig of(Path repoRoot) {
        Path file = repoRoot.resolve("airlock.toml");
        return Files.isRegularFile(file) ? read(file) : none();
    }

    public static ProjectConfig read(Path file) {
        JsonNode root;
        try {
            root = new TomlMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new SandboxException("cannot read " + file + ": " + e.getMessage());
        } catch (JacksonException e) {
            throw new SandboxException(file + " is not valid TOML: " + e.getOriginalMessage());
        }
        for (String key : root.propertyNames()) {
            if (!TABLES.contains(key)) {
                throw new SandboxException(file + ": unknown table [" + key
                        + "]; allowed: [image], [sandbox], [setup], [agent], [network]");
            }
        }
        JsonNode sandbox = table(root, "sandbox", SANDBOX_KEYS, file);
        JsonNode setup = table(root, "setup", SETUP_KEYS, file);
        JsonNode agent = table(root, "agent", AGENT_KEYS, file);
        JsonNode network = table(root, "network", NETWORK_KEYS, file);
        String image = text(sandbox, "image", file);
        if (image == null && root.has("image")) {
            try {
                image = dev.airlock.image.ProjectImage.read(file).name();
            } catch (ImageException e) {
                throw new SandboxException(String.valueOf(e.getMessage()));
            }
        }
        Integer cpus = null;
        JsonNode c = sandbox.get("cpus");
        if (c != null) {
            if (!c.isInt()) {
                throw new SandboxException(file + ": [sandbox].cpus must be a whole number");
            }
            cpus = c.asInt();
        }
        Map<String, String> env = new LinkedHashMap<>();
        JsonNode e = sandbox.get("env");
        if (e != null) {
            if (!e.isObject()) {
                throw new SandboxException(file + ": [sandbox].env must be a table of NAME = \"value\"");
            }
            for (String k : e.propertyNames()) {
                if (!e.get(k).isString()) {
                    throw new SandboxException(file + ": [sandbox].env." + k + " must be a string");
                }
                env.put(k, e.get(k).asString());
            }
        }
        List<String> keys = strings(setup, "keys", file, "[setup]");
        for (String k : keys) {
            if (k.startsWith("/") || k.contains("..")) {
                throw new SandboxException(file + ": [setup].keys entry '" + k + "' must be a path inside the repo");
            }
        }
        return new ProjectConfig(
                image,
                text(sandbox, "runtime", file),
                cpus,
                text(sandbox, "memory", file),
                text(sandbox, "disk", file),
                env,
                strings(setup, "run", file, "[setup]"),
                keys,
                strings(agent, "command", file, "[agent]"),
                strings(agent, "env", file, "[agent]"),
                text(network, "mode", file),
                strings(network, "allow_hosts", file, "[network]"),
                strings(network, "add_hosts", file, "[network]"),
                bool(network, "host_ca", file, "[network]"),
                text(agent, "preset", file));
    }

    private static JsonNode table(JsonNode root, String name, Set<String> allowed, Path file) {
        JsonNode t = root.path(name);
        if (t.isMissingNode()) {
            return t;
        }
        if (!t.isObject()) {
            throw new SandboxException(file + ": " + name + " must be a table, [" + name + "]");
        }
        for (String key : t.propertyNames()) {
            if (!allowed.contains(key)) {
                throw new SandboxException(file + ": unknown key '" + key + "' in [" + name + "]; allowed: "
                        + String.join(", ", allowed.stream().sorted().toList()));
            }
        }
        return t;
    }

    private static @Nullable String text(JsonNode table, String key, Path file) {
        JsonNode n = table.get(key);
        if (n == null) {
            return null;
        }
        if (!n.isString()) {
            throw new SandboxException(file + ": " + key + " must be a string");
        }
        return n.asString();
    }

    private static @Nullable Boolean bool(JsonNode table, String key, Path file, String where) {
        JsonNode n = table.get(key);
        if (n == null) {
            return null;
        }
        if (!n.isBoolean()) {
            throw new SandboxException(file + ": " + where + "." + key + " must be true or false");
        }
        return n.asBoolean();
    }

    private static List<String> strings(JsonNode table, String key, Path file, String where) {
        JsonNode n = table.get(key);
        if (n == null) {
            return List.of();
        }
        if (!n.isArray()) {
            throw new SandboxException(file + ": " + where + "." + key + " must be a list of strings");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode x : n) {
            if (!x.isString()) {
                throw new SandboxException(file + ": " + where + "." + key + " must be a list of strings");
            }
            out.add(x.asString());
        }
        return List.copyOf(out);
    }
}
