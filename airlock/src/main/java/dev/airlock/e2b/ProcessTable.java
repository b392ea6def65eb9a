package dev.airlock.e2b;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import tools.jackson.databind.JsonNode;

/** The processes envd started in one sandbox and that still run, by pid and by tag. */
final class ProcessTable implements AutoCloseable {
    private final Map<Integer, GuestProcess> byPid = new ConcurrentHashMap<>();

    void add(GuestProcess p) {
        byPid.put(p.pid(), p);
    }

    void remove(GuestProcess p) {
        byPid.remove(p.pid(), p);
    }

    List<GuestProcess> all() {
        return List.copyOf(byPid.values());
    }

    /** The process a {@code ProcessSelector} ({@code {"pid": N}} or {@code {"tag": T}}) names. */
    GuestProcess select(JsonNode selector) {
        if (selector.has("pid")) {
            long pid = ConnectRpc.number(selector, "pid", -1);
            GuestProcess p = byPid.get((int) pid);
            if (p == null) {
                throw E2bException.notFound("process with pid " + pid + " not found");
            }
            return p;
        }
        String tag = ConnectRpc.string(selector, "tag");
        if (tag != null) {
            for (GuestProcess p : byPid.values()) {
                if (tag.equals(p.tag())) {
                    return p;
                }
            }
            throw E2bException.notFound("process with tag '" + tag + "' not found");
        }
        throw E2bException.badRequest("the process selector needs a pid or a tag");
    }

    @Override
    public void close() {
        byPid.clear();
    }
}
