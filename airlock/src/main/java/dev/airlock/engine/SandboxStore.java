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
    /** The durable record an undurable save replaced (see {@link #saveUndurably}). */
    private static final String DURABLE_COPY = "sandbox.json.durable";

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
        dropDurableCopy(dir);
    }

    /**
     * As {@link #save}, and the record's directory fsynced too, so a host crash keeps this record
     * and not the one before: for a step after which the record before would be wrong about what
     * is left (a pause ends the VMM that a record saying running points at).
     */
    public void saveCommitted(Sandbox s) {
        save(s);
        HostFiles.syncDirectory(dir(s.id()));
    }

    /**
     * Saves a record that a host crash may take back to the one before: replaced by a rename
     * like every record, but not fsynced (an fsync costs 1.3-7 ms on this host's disk). For a
     * sandbox that has just come up, whose record before says it is not running: after a host
     * crash nothing runs, whichever of the two survives. The record before, durable, is kept as
     * a hard link and read instead should the crash leave this one torn (a rename committed
     * before its data, which ext4 prevents and other filesystems may not); the next durable save
     * drops it. Two in a row keep the first one's durable record.
     */
    public void saveUndurably(Sandbox s) {
        Path dir = AirlockDirs.ensureOwnerOnlyDir(dir(s.id()));
        Path record = dir.resolve(RECORD);
        Path copy = dir.resolve(DURABLE_COPY);
        if (!Files.isRegularFile(record)) {
            save(s); // nothing durable to fall back on
            return;
        }
        try {
            if (!Files.exists(copy)) {
                Files.createLink(copy, record);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep the record of sandbox " + s.id(), e);
        }
        HostFiles.replace(record, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(s));
    }

    private static void dropDurableCopy(Path dir) {
        try {
            Files.deleteIfExists(dir.resolve(DURABLE_COPY));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot drop the earlier record in " + dir, e);
        }
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
            dropDurableCopy(dir);
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
            Path copy = file.resolveSibling(DURABLE_COPY);
            if (Files.isRegularFile(copy)) {
                try {
                    // a host crash tore a record saved undurably: the durable one before it stands
                    return Optional.of(JSON.readValue(copy.toFile(), Sandbox.class));
                } catch (RuntimeException alsoTorn) {
                    e.addSuppressed(alsoTorn);
                }
            }
            throw new SandboxException("sandbox record " + file + " is unreadable (" + e.getMessage() + ")", e);
        }
    }
}
