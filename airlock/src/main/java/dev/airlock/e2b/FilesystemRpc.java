package dev.airlock.e2b;

import dev.airlock.guest.DirEntry;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import java.io.IOException;
import java.io.OutputStream;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * envd's {@code filesystem.Filesystem} service: Stat, MakeDir, Move, ListDir, Remove, WatchDir
 * and the polled watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher). The guest agent has
 * no change notification, so a watch compares listings every {@link #POLL}: it reports
 * creations, writes (size or time changed), removals and mode changes, not renames as such (a
 * rename shows as a removal and a creation).
 */
final class FilesystemRpc {
    private static final String PREFIX = "/filesystem.Filesystem/";
    static final Duration POLL = Duration.ofMillis(200);
    private static final int MAX_ENTRIES = 10_000;
    private static final int MAX_DEPTH = 16;
    private static final int MAX_PENDING_EVENTS = 10_000;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final E2bSandboxes sandboxes;
    private final Map<String, Watcher> watchers = new ConcurrentHashMap<>();

    FilesystemRpc(E2bSandboxes sandboxes) {
        this.sandboxes = sandboxes;
    }

    static boolean handles(String path) {
        return path.startsWith(PREFIX);
    }

    void handle(Exchange ex, E2bSandbox sandbox, E2bUser user) throws IOException, InterruptedException {
        String method = ex.path().substring(PREFIX.length());
        String id = sandbox.sandboxId();
        switch (method) {
            case "Stat" ->
                Rpc.unary(ex, request -> {
                    String path = user.resolve(ConnectRpc.requiredString(request, "path"));
                    return ConnectRpc.object()
                            .set("entry", GuestFiles.entry(path, channel(id).stat(path)));
                });
            case "MakeDir" -> Rpc.unary(ex, request -> makeDir(id, user, request));
            case "Move" -> Rpc.unary(ex, request -> move(id, user, request));
            case "ListDir" -> Rpc.unary(ex, request -> listDir(id, user, request));
            case "Remove" ->
                Rpc.unary(ex, request -> {
                    String path = user.resolve(ConnectRpc.requiredString(request, "path"));
                    GuestChannel ch = channel(id);
                    ch.stat(path); // not found is an error, as in envd
                    GuestFiles.run(ch, user, List.of("rm", "-rf", "--", path), "removing " + path);
                    return ConnectRpc.object();
                });
            case "WatchDir" -> Rpc.serverStream(ex, request -> watchDir(ex, id, user, request));
            case "CreateWatcher" ->
                Rpc.unary(ex, request -> {
                    Watcher w = watcher(id, user, request);
                    String watcherId = HexFormat.of().formatHex(bytes());
                    watchers.put(watcherId, w);
                    Thread.ofVirtual().name("e2b-watcher-" + watcherId).start(() -> w.pollInBackground());
                    return ConnectRpc.object().put("watcherId", watcherId);
                });
            case "GetWatcherEvents" ->
                Rpc.unary(ex, request -> {
                    Watcher w = requireWatcher(ConnectRpc.requiredString(request, "watcherId"));
                    ObjectNode answer = ConnectRpc.object();
                    ArrayNode events = answer.putArray("events");
                    w.drain().forEach(events::add);
                    return answer;
                });
            case "RemoveWatcher" ->
                Rpc.unary(ex, request -> {
                    Watcher w = watchers.remove(ConnectRpc.requiredString(request, "watcherId"));
                    if (w == null) {
                        throw E2bException.notFound("no such watcher");
                    }
                    w.stop();
                    return ConnectRpc.object();
                });
            default -> throw new E2bException(501, "filesystem.Filesystem/" + method + " is not implemented");
        }
    }

    private static byte[] bytes() {
        byte[] b = new byte[12];
        RANDOM.nextBytes(b);
        return b;
    }

    private GuestChannel channel(String id) throws IOException {
        return sandboxes.session(id).channel();
    }

    private JsonNode makeDir(String id, E2bUser user, JsonNode request) throws IOException, InterruptedException {
        String path = user.resolve(ConnectRpc.requiredString(request, "path"));
        GuestChannel ch = channel(id);
        try {
            FileStat existing = ch.stat(path);
            throw new E2bException(
                    409,
                    path + " already exists"
                            + (existing.type() == FileType.DIRECTORY ? "" : " and is not a directory"));
        } catch (GuestException e) {
            if (e.errno() != GuestException.ENOENT) {
                throw e;
            }
        }
        GuestFiles.run(ch, user, List.of("mkdir", "-p", "--", path), "creating " + path);
        return ConnectRpc.object().set("entry", GuestFiles.entry(path, ch.stat(path)));
    }

    private JsonNode move(String id, E2bUser user, JsonNode request) throws IOException, InterruptedException {
        String from = user.resolve(ConnectRpc.requiredString(request, "source"));
        String to = user.resolve(ConnectRpc.requiredString(request, "destination"));
        GuestChannel ch = channel(id);
        ch.stat(from);
        GuestFiles.ensureParent(ch, user, to);
        GuestFiles.run(ch, user, List.of("mv", "-T", "--", from, to), "moving " + from + " to " + to);
        return ConnectRpc.object().set("entry", GuestFiles.entry(to, ch.stat(to)));
    }

    private JsonNode listDir(String id, E2bUser user, JsonNode request) throws IOException, InterruptedException {
        String path = user.resolve(ConnectRpc.requiredString(request, "path"));
        long depth = ConnectRpc.number(request, "depth", 1);
        if (depth < 1) {
            depth = 1;
        }
        GuestChannel ch = channel(id);
        FileStat top = ch.stat(path);
        if (top.type() != FileType.DIRECTORY) {
            throw E2bException.badRequest(path + " is not a directory");
        }
        ObjectNode answer = ConnectRpc.object();
        ArrayNode entries = answer.putArray("entries");
        Deque<Map.Entry<String, Integer>> dirs = new ArrayDeque<>();
        dirs.add(Map.entry(path, 1));
        int count = 0;
        while (!dirs.isEmpty()) {
            Map.Entry<String, Integer> dir = dirs.poll();
            for (DirEntry e : ch.list(dir.getKey())) {
                if (++count > MAX_ENTRIES) {
                    throw new E2bException(413, "more than " + MAX_ENTRIES + " entries: list with a smaller depth");
                }
                String child = (dir.getKey().equals("/") ? "" : dir.getKey()) + "/" + e.name();
                entries.add(GuestFiles.entry(child, e.stat()));
                if (e.stat().type() == FileType.DIRECTORY && dir.getValue() < Math.min(depth, MAX_DEPTH)) {
                    dirs.add(Map.entry(child, dir.getValue() + 1));
                }
            }
        }
        return answer;
    }

    private Watcher watcher(String id, E2bUser user, JsonNode request) throws IOException, InterruptedException {
        String path = user.resolve(ConnectRpc.requiredString(request, "path"));
        GuestChannel ch = channel(id);
        FileStat top = ch.stat(path);
        if (top.type() != FileType.DIRECTORY) {
            throw E2bException.badRequest(path + " is not a directory");
        }
        return new Watcher(ch, path, ConnectRpc.bool(request, "recursive"));
    }

    private Watcher requireWatcher(String watcherId) {
        Watcher w = watchers.get(watcherId);
        if (w == null) {
            throw E2bException.notFound("no such watcher");
        }
        return w;
    }

    private void watchDir(Exchange ex, String id, E2bUser user, JsonNode request)
            throws IOException, InterruptedException {
        Watcher w = watcher(id, user, request);
        Duration keepalive = ConnectRpc.keepalive(ex);
        Duration timeout = ConnectRpc.timeout(ex);
        Instant deadline = timeout == null ? null : Instant.now().plus(timeout);
        OutputStream out = ex.stream(200, ConnectRpc.STREAM_TYPE);
        try {
            ObjectNode start = ConnectRpc.object();
            start.putObject("start");
            ConnectRpc.writeMessage(out, start);
            Instant quietSince = Instant.now();
            while (deadline == null || Instant.now().isBefore(deadline)) {
                Thread.sleep(POLL); // the guest has no change notification: this is the polling period
                List<ObjectNode> events = w.poll();
                for (ObjectNode event : events) {
                    ConnectRpc.writeMessage(out, ConnectRpc.object().set("filesystem", event));
                }
                if (!events.isEmpty()) {
                    quietSince = Instant.now();
                } else if (Duration.between(quietSince, Instant.now()).compareTo(keepalive) >= 0) {
                    ObjectNode alive = ConnectRpc.object();
                    alive.putObject("keepalive");
                    ConnectRpc.writeMessage(out, alive);
                    quietSince = Instant.now();
                }
            }
            ConnectRpc.endStream(out, new E2bException(504, "the watch reached its timeout"));
            out.close();
        } catch (IOException e) {
            ex.complete(e); // the client stopped watching
        }
    }

    /** Compares listings of a directory (and, when recursive, its subdirectories) between polls. */
    static final class Watcher {
        private final GuestChannel channel;
        private final String root;
        private final boolean recursive;
        private Map<String, FileStat> last;
        private final List<ObjectNode> pending = new ArrayList<>();
        private volatile boolean stopped;

        Watcher(GuestChannel channel, String root, boolean recursive) throws IOException, InterruptedException {
            this.channel = channel;
            this.root = root;
            this.recursive = recursive;
            this.last = snapshot();
        }

        private Map<String, FileStat> snapshot() throws IOException, InterruptedException {
            Map<String, FileStat> all = new LinkedHashMap<>();
            Deque<Map.Entry<String, Integer>> dirs = new ArrayDeque<>();
            dirs.add(Map.entry("", 1));
            while (!dirs.isEmpty()) {
                Map.Entry<String, Integer> dir = dirs.poll();
                List<DirEntry> entries;
                try {
                    entries = channel.list(dir.getKey().isEmpty() ? root : root + "/" + dir.getKey());
                } catch (GuestException e) {
                    if (dir.getKey().isEmpty()) {
                        throw e;
                    }
                    continue; // a subdirectory removed between listings
                }
                for (DirEntry e : entries) {
                    String rel = dir.getKey().isEmpty() ? e.name() : dir.getKey() + "/" + e.name();
                    all.put(rel, e.stat());
                    if (all.size() > MAX_ENTRIES) {
                        throw new E2bException(413, "the watched tree has more than " + MAX_ENTRIES + " entries");
                    }
                    if (recursive && e.stat().type() == FileType.DIRECTORY && dir.getValue() < MAX_DEPTH) {
                        dirs.add(Map.entry(rel, dir.getValue() + 1));
                    }
                }
            }
            return all;
        }

        /** The changes since the last poll, as envd's {@code FilesystemEvent}s. */
        synchronized List<ObjectNode> poll() throws IOException, InterruptedException {
            Map<String, FileStat> now = snapshot();
            List<ObjectNode> events = new ArrayList<>();
            for (Map.Entry<String, FileStat> e : now.entrySet()) {
                FileStat before = last.get(e.getKey());
                FileStat after = e.getValue();
                if (before == null || before.type() != after.type()) {
                    events.add(event(e.getKey(), "EVENT_TYPE_CREATE"));
                } else if (before.size() != after.size() || !before.modified().equals(after.modified())) {
                    events.add(event(e.getKey(), "EVENT_TYPE_WRITE"));
                } else if (before.permissions() != after.permissions()) {
                    events.add(event(e.getKey(), "EVENT_TYPE_CHMOD"));
                }
            }
            for (String gone : last.keySet()) {
                if (!now.containsKey(gone)) {
                    events.add(event(gone, "EVENT_TYPE_REMOVE"));
                }
            }
            last = now;
            return events;
        }

        private static ObjectNode event(String name, String type) {
            return ConnectRpc.object().put("name", name).put("type", type);
        }

        void pollInBackground() {
            try {
                while (!stopped) {
                    Thread.sleep(POLL);
                    List<ObjectNode> events = poll();
                    synchronized (pending) {
                        pending.addAll(events);
                        while (pending.size() > MAX_PENDING_EVENTS) {
                            pending.remove(0);
                        }
                    }
                }
            } catch (IOException | RuntimeException e) {
                stopped = true;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        List<ObjectNode> drain() {
            synchronized (pending) {
                List<ObjectNode> out = List.copyOf(pending);
                pending.clear();
                return out;
            }
        }

        void stop() {
            stopped = true;
        }
    }
}
