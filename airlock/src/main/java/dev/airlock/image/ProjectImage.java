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
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.toml.TomlMapper;

/**
 * The {@code [image]} table of a project's airlock.toml: a user's own image, a built-in plus
 * packages and commands.
 *
 * <pre>
 * [image]
 * name = "myproject"          # optional; default: the directory's name
 * from = "python"             # base, python or node
 * packages = ["jq", "make"]   # Debian packages
 * run = ["echo hello > /etc/motd"]
 * </pre>
 */
public final class ProjectImage {
    private static final Set<String> KEYS = Set.of("name", "from", "packages", "run");

    private ProjectImage() {}

    public static ImageSpec read(Path tomlFile) {
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
        return ImageSpec.derived(name, from, strings(image, "packages", tomlFile), strings(image, "run", tomlFile));
    }

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
