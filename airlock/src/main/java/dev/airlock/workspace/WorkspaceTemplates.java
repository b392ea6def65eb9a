package dev.airlock.workspace;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Failpoint;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessStamp;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import tools.jackson.databind.json.JsonMapper;

/**
 * Writable layers saved right after a repo's setup commands ran, keyed by repository + image +
 * commands + lockfile content. A new sandbox on the same key starts from a copy of the layer, so
 * setup runs once per distinct lockfile, not once per sandbox.
 *
 * <p>A template appears whole or not at all: it is assembled (layer, then {@code template.json})
 * in a staging directory named after the saving process, then renamed to its key in one step. A
 * save cut short leaves only its staging directory, which the next use removes once its process
 * is gone; a key directory without {@code template.json} (what older versions left when cut
 * short) is removed the same way, so no crash blocks a key.
 */
public final class WorkspaceTemplates {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final String STAGING = ".staging";
    private static final String META = "template.json";
    private static final List<String> LAYERS = List.of("layer.ext4", "upper");

    private final Path root;

    public WorkspaceTemplates(AirlockDirs dirs) {
        this.root = dirs.cache().resolve("workspaces");
    }

    public record Template(String key, String repo, Instant created, long sizeBytes, List<String> setup) {}

    /** The saved layer: a microVM's disk file, or a container's upper directory. */
    public Optional<Path> layer(String key) {
        if (Files.isDirectory(root)) {
            // Closes the directory an older Airlock made readable by everyone.
            AirlockDirs.ensureOwnerOnlyDir(root);
        }
        removeLeftovers();
        Path dir = root.resolve(key);
        return complete(dir) ? layerIn(dir) : Optional.empty();
    }

    /**
     * Copies a stopped sandbox's writable layer in as the template for {@code key}: a disk file
     * (sparse, reflinked where the filesystem can) or an overlay upper directory (with its
     * whiteouts and xattrs, which {@code cp -a} keeps). If another save of the same key finished
     * first, its template is kept and this copy dropped.
     */
    public void save(String key, Path layer, String repo, List<String> setup) {
        removeLeftovers();
        Path work = stagingDir(key);
        try {
            boolean directory = Files.isDirectory(layer);
            Path copy = work.resolve(directory ? "upper" : "layer.ext4");
            if (directory) {
                int rc = new ProcessBuilder("cp", "-a", "--reflink=auto", layer.toString(), copy.toString())
                        .inheritIO()
                        .start()
                        .waitFor();
                if (rc != 0) {
                    throw new IOException("cp exited " + rc);
                }
            } else {
                HostFiles.copySparse(layer, copy);
            }
            // Written out before template.json makes it a template: a later use trusts it whole.
            HostFiles.syncTree(copy);
            HostFiles.writeAtomically(
                    work.resolve(META),
                    JSON.writeValueAsBytes(
                            new Template(key, repo, Instant.now(), directory ? 0 : Files.size(layer), setup)));
            Failpoint.reached("workspace-template-staged");
            publish(work, root.resolve(key));
            HostFiles.syncDirectory(root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save workspace template " + key, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            HostFiles.deleteTree(work);
        }
    }

    /** Renames the assembled template to its key; a broken one in the way is removed first. */
    private void publish(Path work, Path dir) throws IOException {
        for (int attempt = 0; ; attempt++) {
            try {
                Files.move(work, dir, StandardCopyOption.ATOMIC_MOVE);
                return;
            } catch (IOException e) {
                // rename(2) onto a non-empty directory fails (EEXIST or ENOTEMPTY): the key is taken.
                if (!Files.exists(dir) || attempt > 0) {
                    throw e;
                }
            }
            if (complete(dir)) {
                return; // a concurrent save of the same key won; both ran the same setup
            }
            discard(dir);
        }
    }

    private Path stagingDir(String key) {
        // A template holds a repository's files and what setup made of them: the owner's alone.
        AirlockDirs.ensureOwnerOnlyDir(root);
        Path staging = AirlockDirs.ensureOwnerOnlyDir(root.resolve(STAGING));
        Path work = staging.resolve(key + "." + ProcessStamp.current().text() + "."
                + HexFormat.of().formatHex(new SecureRandom().generateSeed(4)));
        return AirlockDirs.ensureOwnerOnlyDir(work);
    }

    /**
     * Removes what saves cut short left behind: staging directories of processes that are gone
     * and key directories without {@code template.json}.
     */
    private void removeLeftovers() {
        Path staging = root.resolve(STAGING);
        for (Path p : HostFiles.children(staging)) {
            String name = p.getFileName().toString();
            int dot = name.indexOf('.');
            boolean alive = dot > 0
                    && ProcessStamp.parse(name.substring(dot + 1))
                            .map(ProcessStamp::isAlive)
                            .orElse(false);
            if (!alive) {
                discard(p);
            }
        }
        for (Path dir : HostFiles.children(root)) {
            if (!dir.getFileName().toString().startsWith(".") && Files.isDirectory(dir) && !complete(dir)) {
                discard(dir);
            }
        }
    }

    /**
     * Moves a template (or a dead save's staging directory) into a staging directory of this
     * process in one rename, then deletes it: readers never see half of one, and two processes
     * cleaning up never delete the same tree.
     */
    private void discard(Path dir) {
        String name = dir.getFileName().toString();
        Path away = stagingDir(name.contains(".") ? name.substring(0, name.indexOf('.')) : name);
        try {
            Files.move(dir, away.resolve("gone"), StandardCopyOption.ATOMIC_MOVE);
        } catch (NoSuchFileException e) {
            // Someone else discarded it first.
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the workspace template " + dir, e);
        } finally {
            HostFiles.deleteTree(away);
        }
    }

    private static boolean complete(Path dir) {
        return Files.isRegularFile(dir.resolve(META)) && layerIn(dir).isPresent();
    }

    private static Optional<Path> layerIn(Path dir) {
        for (String name : LAYERS) {
            if (Files.exists(dir.resolve(name))) {
                return Optional.of(dir.resolve(name));
            }
        }
        return Optional.empty();
    }

    public List<Template> list() {
        List<Template> out = new ArrayList<>();
        for (Path d : HostFiles.children(root)) {
            Path meta = d.resolve(META);
            if (!d.getFileName().toString().startsWith(".") && complete(d)) {
                out.add(JSON.readValue(meta.toFile(), Template.class));
            }
        }
        out.sort(Comparator.comparing(Template::created));
        return out;
    }

    /** Removes all templates, or those of one repository; returns how many went. */
    public int prune(String repoOrAll) {
        int n = 0;
        for (Template t : list()) {
            if (repoOrAll.isEmpty() || t.repo().equals(repoOrAll)) {
                discard(root.resolve(t.key()));
                n++;
            }
        }
        return n;
    }
}
