package dev.airlock.backend;

import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.sandbox.Names;
import dev.airlock.sandbox.Sandbox;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Sandboxes brought up ahead of time (restored from a template, or started), so a create only
 * claims one and gives it its identity. A pooled sandbox lives in an ordinary sandbox directory
 * (its future id) without a record, marked by a file (each backend its own name) holding its
 * configuration key; claiming it writes the record. Kept per key, up to {@code size} each and
 * {@code budgetMiB} of guest memory in all; refilled in the background after every claim. For
 * any backend that keeps one (microVM, gVisor).
 */
public final class WarmPool {
    /** The microVM pool's marker; another backend names its own, so sweeps never mix. */
    public static final String MARKER = "pooled";

    /** Brings one sandbox for a key up in the sandbox directory of {@code id}; returns normally when it answers. */
    public interface Filler {
        void restore(String key, Sandbox template, String id);
    }

    private final String marker;
    private final int size;
    private final long budgetMiB;
    private final Path sandboxes;
    private final Filler filler;
    private final Progress progress;
    private final Map<String, Deque<String>> ready = new HashMap<>();
    private final Map<String, Integer> filling = new HashMap<>();
    /** The guest memory of each ready sandbox, by id (what it counts against the budget). */
    private final Map<String, Integer> memoryOf = new HashMap<>();

    private long usedMiB;

    public WarmPool(int size, long budgetMiB, Path sandboxes, Filler filler, Progress progress) {
        this(MARKER, size, budgetMiB, sandboxes, filler, progress);
    }

    public WarmPool(String marker, int size, long budgetMiB, Path sandboxes, Filler filler, Progress progress) {
        this.marker = marker;
        this.size = size;
        this.budgetMiB = budgetMiB;
        this.sandboxes = sandboxes;
        this.filler = filler;
        this.progress = progress;
    }

    /** A ready VM for this key, removed from the pool; the caller owns its directory from now on. */
    public synchronized Optional<String> take(String key, int memoryMiB) {
        Deque<String> q = ready.get(key);
        if (q == null || q.isEmpty()) {
            return Optional.empty();
        }
        usedMiB -= memoryMiB;
        String id = q.poll();
        memoryOf.remove(id);
        return Optional.of(id);
    }

    /** Starts background restores until the key has {@code size} VMs ready or filling, within the budget. */
    public void refill(String key, Sandbox template) {
        refill(key, template, Duration.ZERO);
    }

    /**
     * As {@link #refill(String, Sandbox)}, each start beginning {@code after} from now (counted
     * as filling meanwhile): a claimed sandbox's first commands then need not share a small
     * host's CPUs with the start of its successor.
     */
    public void refill(String key, Sandbox template, Duration after) {
        int memory = template.resources().memoryMiB();
        while (true) {
            synchronized (this) {
                int have = ready.getOrDefault(key, new ArrayDeque<>()).size() + filling.getOrDefault(key, 0);
                if (have >= size || usedMiB + memory > budgetMiB) {
                    return;
                }
                filling.merge(key, 1, Integer::sum);
                usedMiB += memory;
            }
            String id = Names.newId();
            Thread.ofVirtual().name("warm-pool-" + id.substring(0, 8)).start(() -> {
                if (after.isPositive()) {
                    try {
                        Thread.sleep(after);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt(); // start at once: the pool is closing
                    }
                }
                fill(key, template, id, memory);
            });
        }
    }

    private void fill(String key, Sandbox template, String id, int memory) {
        boolean ok = false;
        try {
            filler.restore(key, template, id);
            Files.writeString(sandboxes.resolve(id).resolve(marker), key);
            ok = true;
        } catch (IOException | RuntimeException e) {
            progress.step("warning: warm pool: cannot bring up a sandbox for " + key + ": " + e.getMessage());
            HostFiles.deleteTree(sandboxes.resolve(id));
        }
        synchronized (this) {
            filling.merge(key, -1, Integer::sum);
            if (ok) {
                ready.computeIfAbsent(key, k -> new ArrayDeque<>()).add(id);
                memoryOf.put(id, memory);
            } else {
                usedMiB -= memory;
            }
            notifyAll();
        }
    }

    /** Waits until no restore for the key is under way (tests and benchmarks; never used to synchronise a claim). */
    public synchronized int awaitFilled(String key, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (filling.getOrDefault(key, 0) > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                break;
            }
            wait(Math.max(1, left / 1_000_000));
        }
        return ready.getOrDefault(key, new ArrayDeque<>()).size();
    }

    /** Waits until no restore is under way for any key. */
    public synchronized void awaitIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (filling.values().stream().mapToInt(Integer::intValue).sum() > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    /** Empties the pool and returns the ids of the ready VMs, for the caller to end. */
    public synchronized List<String> drain() {
        List<String> all = ready.values().stream().flatMap(Deque::stream).toList();
        ready.clear();
        memoryOf.clear();
        usedMiB = 0;
        return all;
    }

    /**
     * Takes the ready sandboxes of the keys {@code which} accepts out of the pool and returns
     * their ids, for the caller to end (their image is going). Starts under way for those keys
     * are waited for first, up to {@code wait} (an interrupt ends the wait, kept for the
     * caller), so that none becomes ready after the drain.
     */
    public synchronized List<String> drain(Predicate<String> which, Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        while (filling.entrySet().stream().anyMatch(e -> e.getValue() > 0 && which.test(e.getKey()))) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                break;
            }
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        List<String> out = new ArrayList<>();
        for (var it = ready.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (which.test(e.getKey())) {
                for (String id : e.getValue()) {
                    usedMiB -= memoryOf.getOrDefault(id, 0);
                    memoryOf.remove(id);
                    out.add(id);
                }
                it.remove();
            }
        }
        return out;
    }

    /** Every pooled VM's directory, ready or not (for the sweep of a previous daemon's leftovers). */
    public static List<Path> leftovers(Path sandboxes) {
        return leftovers(sandboxes, MARKER);
    }

    /** Every directory pooled under {@code marker}, ready or not. */
    public static List<Path> leftovers(Path sandboxes, String marker) {
        if (!Files.isDirectory(sandboxes)) {
            return List.of();
        }
        try (Stream<Path> dirs = Files.list(sandboxes)) {
            return dirs.filter(d -> Files.exists(d.resolve(marker)) && !Files.exists(d.resolve("sandbox.json")))
                    .toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    public static String keyOf(Path dir) {
        return keyOf(dir, MARKER);
    }

    public static String keyOf(Path dir, String marker) {
        try {
            return Files.readString(dir.resolve(marker), StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            return "";
        }
    }
}
