package dev.airlock.engine;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import tools.jackson.databind.json.JsonMapper;

/**
 * Sandboxes on disk: one directory per sandbox holding {@code sandbox.json} (replaced atomically
 * on every change, so a crash leaves the old or the new version, never half of one), the
 * writable layer and the VMM's files. The directory is the sandbox: it goes only with an
 * explicit remove.
 */
public final class SandboxStore {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final String RECORD = "sandbox.json";

    private final Path root;

    public SandboxStore(Path root) {
        this.root = root;
    }

    public Path dir(String id) {
        return root.resolve(id);
    }

    public List<Sandbox> list() {
        if (!Files.isDirectory(root)) {
            return List.of();
        }
        List<Sandbox> out = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(root)) {
            for (Path d : dirs.filter(Files::isDirectory).toList()) {
                read(d.resolve(RECORD)).ifPresent(out::add);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.sort(Comparator.comparing(Sandbox::created));
        return out;
    }

    /** By exact name, full id, or an unambiguous id prefix of at least 4 characters. */
    public Optional<Sandbox> find(String nameOrId) {
        List<Sandbox> all = list();
        for (Sandbox s : all) {
            if (s.name().equals(nameOrId) || s.id().equals(nameOrId)) {
                return Optional.of(s);
            }
        }
        if (nameOrId.length() >= 4) {
            List<Sandbox> hits =
                    all.stream().filter(s -> s.id().startsWith(nameOrId)).toList();
            if (hits.size() > 1) {
                throw new SandboxException(
                        "'" + nameOrId + "' matches " + hits.size() + " sandboxes; give more of the id");
            }
            return hits.stream().findFirst();
        }
        return Optional.empty();
    }

    public Sandbox require(String nameOrId) {
        return find(nameOrId)
                .orElseThrow(() -> new SandboxException(
                        SandboxException.Kind.NOT_FOUND,
                        "no such sandbox '" + nameOrId + "'; list sandboxes with: airlock ps -a"));
    }

    public void save(Sandbox s) {
        Path dir = AirlockDirs.ensureOwnerOnlyDir(dir(s.id()));
        HostFiles.writeAtomically(
                dir.resolve(RECORD), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(s));
    }

    /**
     * Saves a changed record of a sandbox only if it still has one: a background check (the
     * daemon's watchdog noticing a dead VMM) must not bring back the directory of a sandbox that
     * {@code rm} deleted in the meantime.
     */
    public void update(Sandbox s) {
        Path dir = dir(s.id());
        if (!Files.isRegularFile(dir.resolve(RECORD))) {
            return;
        }
        try {
            HostFiles.writeAtomically(
                    dir.resolve(RECORD), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(s));
        } catch (java.io.UncheckedIOException e) {
            if (Files.isDirectory(dir)) {
                throw e;
            }
            // Removed while we wrote: nothing to update.
        }
    }

    /** Deletes the sandbox's directory and everything in it, its disk included. */
    public void delete(String id) {
        HostFiles.deleteTree(dir(id));
    }

    /** Holds the store-wide lock, which makes name checks and creation atomic across processes. */
    public HostFiles.Lock lock() {
        return HostFiles.lock(AirlockDirs.ensureOwnerOnlyDir(root).resolve(".lock"));
    }

    /** The record of the sandbox with this id as it is on disk now. */
    public Optional<Sandbox> read(String id) {
        return read(dir(id).resolve(RECORD));
    }

    private static Optional<Sandbox> read(Path file) {
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        try {
            return Optional.of(JSON.readValue(file.toFile(), Sandbox.class));
        } catch (RuntimeException e) {
            throw new SandboxException("sandbox record " + file + " is unreadable (" + e.getMessage() + ")", e);
        }
    }
}
