package dev.airlock.backend;

import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The backends of this host by runtime name. A backend whose tools are missing stays listed
 * (so {@code doctor} can say why) but refuses new sandboxes with its reason; the others keep
 * working. Existing sandboxes reach their backend whatever its state, so they can be removed.
 */
public final class Backends {
    private final Map<String, Backend> byName = new LinkedHashMap<>();
    private final String defaultName;

    /** {@code all} in order of preference; the default is the first that is available. */
    public Backends(List<Backend> all) {
        for (Backend b : all) {
            if (byName.putIfAbsent(b.name(), b) != null) {
                throw new IllegalArgumentException("two backends are named " + b.name());
            }
        }
        if (byName.isEmpty()) {
            throw new IllegalArgumentException("no backends");
        }
        this.defaultName = all.getFirst().name();
    }

    public List<Backend> all() {
        return List.copyOf(byName.values());
    }

    public List<String> names() {
        return List.copyOf(byName.keySet());
    }

    /** The runtime a sandbox gets when none is asked for. */
    public String defaultName() {
        return defaultName;
    }

    /** The backend for a new sandbox: known, and able to run here. */
    public Backend forNew(String name) {
        Backend b = byName.get(name);
        if (b == null) {
            throw new SandboxException("unknown runtime '" + name + "': use " + String.join(" or ", names()));
        }
        Optional<String> why = b.unavailableReason();
        if (why.isPresent()) {
            List<String> others = new ArrayList<>();
            for (Backend o : byName.values()) {
                if (!o.name().equals(name) && o.unavailableReason().isEmpty()) {
                    others.add("--runtime " + o.name());
                }
            }
            throw SandboxException.unavailable("the " + name + " runtime cannot run here: " + why.get()
                    + (others.isEmpty() ? "" : "; use " + String.join(" or ", others) + " instead"));
        }
        return b;
    }

    /** The backend of an existing sandbox, available or not (a sandbox can always be inspected and removed). */
    public Backend of(Sandbox s) {
        Backend b = byName.get(s.runtime());
        if (b == null) {
            throw SandboxException.failed("sandbox '" + s.name() + "' was made by runtime '" + s.runtime()
                    + "', which this build of Airlock does not have; remove its directory by hand");
        }
        return b;
    }

    /** Ends what every backend keeps beyond its sandboxes (warm pools). */
    public void close() {
        for (Backend b : byName.values()) {
            b.close();
        }
    }
}
