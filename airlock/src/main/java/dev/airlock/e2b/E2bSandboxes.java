package dev.airlock.e2b;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.SandboxService;
import dev.airlock.service.SandboxSession;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.type.TypeReference;

/**
 * The sandboxes this E2B endpoint made: their E2B records (kept in {@code DATA/e2b/sandboxes.json},
 * 0600 in a 0700 directory, so tokens and timeouts survive a restart of the endpoint), one guest
 * session per sandbox shared by every envd request, and the reaper that kills a sandbox when its
 * timeout passes, as E2B does. One endpoint at a time owns a data directory's records (a lock
 * file beside them): two writing the same file would each drop the other's sandboxes.
 */
final class E2bSandboxes implements AutoCloseable {
    private final SandboxService service;
    private final Path file;
    private final Clock clock;
    private final FileChannel lockChannel;
    private final Map<String, E2bSandbox> records = new ConcurrentHashMap<>();
    private final Map<String, SandboxSession> sessions = new ConcurrentHashMap<>();
    private final Map<String, ProcessTable> processes = new ConcurrentHashMap<>();
    private final ScheduledExecutorService reaper = Executors.newSingleThreadScheduledExecutor(
            Thread.ofVirtual().name("e2b-reaper").factory());

    E2bSandboxes(SandboxService service, Path dataDir, Clock clock) {
        this.service = service;
        Path dir = AirlockDirs.ensurePrivateDir(dataDir.resolve("e2b"));
        this.file = dir.resolve("sandboxes.json");
        this.clock = clock;
        this.lockChannel = lock(dir.resolve("lock"));
        try {
            load();
        } catch (RuntimeException e) {
            closeQuietly(lockChannel);
            throw e;
        }
        reaper.scheduleWithFixedDelay(this::reapExpired, 1, 1, TimeUnit.SECONDS);
    }

    private static FileChannel lock(Path lockFile) {
        try {
            FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock held;
            try {
                held = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                held = null;
            }
            if (held == null) {
                closeQuietly(ch);
                throw SandboxException.conflict("another E2B endpoint already serves " + lockFile.getParent()
                        + " (airlock e2b --listen, or airlock serve, which serves E2B on its --listen"
                        + " address): use that one, or stop it first");
            }
            return ch;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot lock " + lockFile, e);
        }
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException e) {
            // Closing a lock file: the lock goes with the process anyway.
        }
    }

    SandboxService service() {
        return service;
    }

    Instant now() {
        return clock.instant();
    }

    private void load() {
        if (!Files.exists(file)) {
            return;
        }
        try {
            List<E2bSandbox> saved = Json.MAPPER.readValue(Files.readAllBytes(file), new TypeReference<>() {});
            for (E2bSandbox s : saved) {
                records.put(s.sandboxId(), s);
            }
        } catch (IOException | RuntimeException e) {
            throw new UncheckedIOException(
                    "cannot read " + file + " (" + e.getMessage() + "); move it away to start afresh",
                    e instanceof IOException io ? io : new IOException(e));
        }
    }

    private synchronized void save() {
        List<E2bSandbox> all = new ArrayList<>(records.values());
        all.sort(Comparator.comparing(E2bSandbox::startedAt));
        HostFiles.writeAtomically(file, Json.MAPPER.writeValueAsBytes(all));
    }

    void put(E2bSandbox sandbox) {
        records.put(sandbox.sandboxId(), sandbox);
        save();
    }

    @Nullable
    E2bSandbox get(String id) {
        return records.get(id);
    }

    /** The record, or 404 in E2B's words. */
    E2bSandbox require(String id) {
        E2bSandbox s = records.get(id);
        if (s == null) {
            throw E2bException.notFound("sandbox '" + id + "' not found");
        }
        return s;
    }

    List<E2bSandbox> all() {
        List<E2bSandbox> all = new ArrayList<>(records.values());
        all.sort(Comparator.comparing(E2bSandbox::startedAt));
        return all;
    }

    /** Kills and removes the sandbox and forgets it; false when it was not one of ours. */
    boolean kill(String id) {
        E2bSandbox s = records.get(id);
        if (s == null) {
            return false;
        }
        dropSession(id);
        try {
            service.remove(id, true);
        } catch (SandboxException e) {
            if (e.kind() != SandboxException.Kind.NOT_FOUND) {
                throw e;
            }
        }
        records.remove(id);
        save();
        return true;
    }

    /** The sandbox's shared guest session, opened (and the sandbox resumed, if idle-paused) on demand. */
    SandboxSession session(String id) throws IOException {
        SandboxSession s = sessions.get(id);
        if (s != null && s.channel().isOpen()) {
            return s;
        }
        synchronized (this) {
            s = sessions.get(id);
            if (s != null && s.channel().isOpen()) {
                return s;
            }
            SandboxSession opened = service.session(id);
            sessions.put(id, opened);
            return opened;
        }
    }

    /** Ends the guest session (before a pause or a kill); its processes are forgotten. */
    void dropSession(String id) {
        ProcessTable table = processes.remove(id);
        if (table != null) {
            table.close();
        }
        SandboxSession s = sessions.remove(id);
        if (s != null) {
            s.close();
        }
    }

    ProcessTable processes(String id) {
        return processes.computeIfAbsent(id, k -> new ProcessTable());
    }

    private void reapExpired() {
        Instant now = clock.instant();
        for (E2bSandbox s : List.copyOf(records.values())) {
            if (s.endAt().isBefore(now)) {
                try {
                    kill(s.sandboxId());
                } catch (RuntimeException e) {
                    // Tried again on the next round; a sandbox that cannot be removed stays listed.
                    System.err.println(
                            "airlock e2b: could not kill expired sandbox " + s.sandboxId() + ": " + e.getMessage());
                }
            }
        }
    }

    @Override
    public void close() {
        reaper.shutdownNow();
        for (String id : List.copyOf(sessions.keySet())) {
            dropSession(id);
        }
        closeQuietly(lockChannel);
    }
}
