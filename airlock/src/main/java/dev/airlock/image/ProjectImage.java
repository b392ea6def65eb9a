package dev.airlock.image;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.toml.TomlMapper;

/**
 * The {@code [image]} table of a project's airlock.toml: a user's own image, either a built-in
 * plus Debian packages and commands, or a Dockerfile in the repository.
 *
 * <pre>
 * [image]
 * name = "myproject"          # optional; default: the directory's name
 * from = "python"             # base, python or node
 * packages = ["jq", "make"]   # Debian packages
 * run = ["echo hello > /etc/motd"]
 * # or, instead of from/packages/run:
 * dockerfile = "docker/dev.Dockerfile"   # relative to the repository
 * </pre>
 *
 * The packages are installed by mmdebstrap from the host's Debian mirror (Debian's own packages
 * and maintainer scripts); the {@code run} commands, which a commit from a sandbox can change,
 * never run on the host: they are the RUN steps of a build in a sandbox, as a Dockerfile's are.
 *
 * @param name the image's name
 * @param packages the built-in plus the packages: the base the commands run on
 * @param run the commands, each a RUN step ({@code /bin/sh -ec COMMAND}) in a sandbox
 * @param dockerfile the Dockerfile to build instead (inside {@code directory}), or null
 * @param directory the repository: the toml's directory, the Dockerfile's build context
 */
public record ProjectImage(
        String name,
        ImageSpec packages,
        List<String> run,
        @Nullable Path dockerfile,
        Path directory) {
    private static final Set<String> KEYS = Set.of("name", "from", "packages", "run", "dockerfile");

    public ProjectImage {
        run = List.copyOf(run);
    }

    public static ProjectImage read(Path tomlFile) {
        JsonNode root;
        try {
            root = new TomlMapper().readTree(Files.readString(tomlFile));
        } catch (IOException e) {
            throw new ImageException("cannot read " + tomlFile + ": " + e.getMessage());
        } catch (JacksonException e) {
            throw new ImageException(tomlFile + " is not valid TOML: " + e.getOriginalMessage());
        }
        JsonNode image = root.path("image");
        if (!image.isObject()) {
            throw new ImageException(
                    tomlFile + " has no [image] table; add one, e.g.\n[image]\nfrom = \"base\"\npackages = [\"jq\"]");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = image.properties().iterator(); it.hasNext(); ) {
            String key = it.next().getKey();
            if (!KEYS.contains(key)) {
                throw new ImageException(tomlFile + ": unknown key '" + key + "' in [image]; allowed: "
                        + String.join(", ", KEYS.stream().sorted().toList()));
            }
        }
        Path dir = tomlFile.toAbsolutePath().getParent();
        String defaultName = dir == null || dir.getFileName() == null
                ? "project"
                : dir.getFileName().toString();
        String name = text(image, "name", tomlFile, sanitize(defaultName));
        String from = text(image, "from", tomlFile, "base");
        ImageSpec packages = ImageSpec.derived(name, from, strings(image, "packages", tomlFile), List.of());
        List<String> run = strings(image, "run", tomlFile);
        Path repo = dir == null ? Path.of(".").toAbsolutePath() : dir;
        if (!image.has("dockerfile")) {
            return new ProjectImage(name, packages, run, null, repo);
        }
        for (String other : List.of("from", "packages", "run")) {
            if (image.has(other)) {
                throw new ImageException(tomlFile + ": [image] has both dockerfile and " + other
                        + "; a Dockerfile says its own base and steps: keep one of them");
            }
        }
        return new ProjectImage(
                name, packages, List.of(), inside(repo, text(image, "dockerfile", tomlFile, ""), tomlFile), repo);
    }

    /** Whether the toml has an {@code [image]} table (an airlock.toml may hold only a workspace's settings). */
    public static boolean declaredIn(Path tomlFile) {
        try {
            return new TomlMapper()
                    .readTree(Files.readString(tomlFile))
                    .path("image")
                    .isObject();
        } catch (IOException | JacksonException e) {
            return true; // read() says what is wrong with it
        }
    }

    /**
     * The Dockerfile {@code [image].dockerfile} names: a path below the repository, symlinks
     * resolved, refused when it leads anywhere else (a commit from a sandbox can change the
     * toml, so the name is not trusted to stay inside).
     */
    private static Path inside(Path repo, String relative, Path tomlFile) {
        String what = tomlFile + ": [image].dockerfile = \"" + relative + "\"";
        if (relative.isEmpty() || relative.startsWith("/") || relative.indexOf('\0') >= 0) {
            throw new ImageException(what + ": give a path relative to the repository, e.g. \"Dockerfile\"");
        }
        Path root;
        Path file;
        try {
            root = repo.toRealPath();
            file = root.resolve(relative).normalize();
            if (!file.startsWith(root)) {
                throw new ImageException(
                        what + " leads outside the repository " + root + "; name a Dockerfile inside it");
            }
            file = file.toRealPath();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new ImageException(what + ": no such file in " + repo);
        } catch (IOException e) {
            throw new ImageException(what + ": " + e.getMessage());
        }
        if (!file.startsWith(root)) {
            throw new ImageException(
                    what + " leads outside the repository " + root + " through a symlink; name a Dockerfile inside it");
        }
        if (!Files.isRegularFile(file)) {
            throw new ImageException(what + " is not a file");
        }
        return file;
    }

    /** The commands as a Dockerfile FROM the packages' image {@code baseId}: one RUN step each. */
    public String dockerfile(String baseId) {
        StringBuilder out = new StringBuilder("FROM " + baseId + "\n");
        for (String command : run) {
            // the exec form, one JSON line: the command's text reaches sh as written, newlines included
            out.append("RUN ")
                    .append(JSON.writeValueAsString(List.of("/bin/sh", "-ec", command)))
                    .append('\n');
        }
        return out.toString();
    }

    private static final tools.jackson.databind.json.JsonMapper JSON =
            tools.jackson.databind.json.JsonMapper.builder().build();

    private static String text(JsonNode table, String key, Path file, String fallback) {
        JsonNode n = table.get(key);
        if (n == null) {
            return fallback;
        }
        if (!n.isString()) {
            throw new ImageException(file + ": [image]." + key + " must be a string");
        }
        return n.asString();
    }

    private static List<String> strings(JsonNode table, String key, Path file) {
        JsonNode n = table.get(key);
        if (n == null) {
            return List.of();
        }
        if (!n.isArray()) {
            throw new ImageException(file + ": [image]." + key + " must be a list of strings");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isString()) {
                throw new ImageException(file + ": [image]." + key + " must be a list of strings");
            }
            out.add(e.asString());
        }
        return out;
    }

    private static String sanitize(String s) {
        String t = s.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9._-]", "-").replaceAll("^[^a-z0-9]+", "");
        return t.isEmpty() ? "project" : t.substring(0, Math.min(t.length(), 63));
    }
}
