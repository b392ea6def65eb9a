package dev.airlock.workspace;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import tools.jackson.databind.json.JsonMapper;

/**
 * Writable layers saved right after a repo's setup commands ran, keyed by image + commands +
 * lockfile content. A new sandbox on the same key starts from a copy of the layer, so setup runs
 * once per distinct lockfile, not once per sandbox.
 */
public final class WorkspaceTemplates {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final Path root;

    public WorkspaceTemplates(AirlockDirs dirs) {
        this.root = dirs.cache().resolve("workspaces");
    }

    public record Template(String key, String repo, Instant created, long sizeBytes, List<String> setup) {}

    /** The saved layer: a microVM's disk file, or a container's upper directory. */
    public Optional<Path> layer(String key) {
        Path dir = root.resolve(key);
        if (!Files.isRegularFile(dir.resolve("template.json"))) {
            return Optional.empty();
        }
        for (String name : List.of("layer.ext4", "upper")) {
            if (Files.exists(dir.resolve(name))) {
                return Optional.of(dir.resolve(name));
            }
        }
        return Optional.empty();
    }

    /**
     * Copies a stopped sandbox's writable layer in as the template for {@code key}: a disk file
     * (sparse, reflinked where the filesystem can) or an overlay upper directory (with its
     * whiteouts and xattrs, which {@code cp -a} keeps).
     */
    public void save(String key, Path layer, String repo, List<String> setup) {
        Path dir = AirlockDirs.ensureDir(root.resolve(key));
        try {
            boolean directory = Files.isDirectory(layer);
            String name = directory ? "upper" : "layer.ext4";
            Path tmp = dir.resolve(name + ".tmp");
            HostFiles.deleteTree(tmp);
            if (directory) {
                int rc = new ProcessBuilder("cp", "-a", "--reflink=auto", layer.toString(), tmp.toString())
                        .inheritIO()
                        .start()
                        .waitFor();
                if (rc != 0) {
                    throw new IOException("cp exited " + rc);
                }
            } else {
                HostFiles.copySparse(layer, tmp);
            }
            Files.move(tmp, dir.resolve(name), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            HostFiles.writeAtomically(
                    dir.resolve("template.json"),
                    JSON.writeValueAsBytes(
                            new Template(key, repo, Instant.now(), directory ? 0 : Files.size(layer), setup)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save workspace template " + key, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    public List<Template> list() {
        if (!Files.isDirectory(root)) {
            return List.of();
        }
        List<Template> out = new ArrayList<>();
        try (var dirs = Files.list(root)) {
            for (Path d : dirs.toList()) {
                Path meta = d.resolve("template.json");
                if (Files.isRegularFile(meta)) {
                    out.add(JSON.readValue(meta.toFile(), Template.class));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.sort(Comparator.comparing(Template::created));
        return out;
    }

    /** Removes all templates, or those of one repository; returns how many went. */
    public int prune(String repoOrAll) {
        int n = 0;
        for (Template t : list()) {
            if (repoOrAll.isEmpty() || t.repo().equals(repoOrAll)) {
                HostFiles.deleteTree(root.resolve(t.key()));
                n++;
            }
        }
        return n;
    }
}
