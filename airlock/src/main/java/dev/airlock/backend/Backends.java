package dev.airlock.backend;

import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.jspecify.annotations.Nullable;

/**
 * The backends of this host by runtime name. A backend whose tools are missing stays listed
 * (so {@code doctor} can say why) but refuses new sandboxes with its reason; the others keep
 * working. Existing sandboxes reach their backend whatever its state, so they can be removed.
 *
 * <p>The default runtime follows the host, by rule and measurement, not by list order: the
 * backend whose sandboxes get the strongest {@link Boundary} that works here (KVM really runs a
 * guest: microvm; else runsc works: gvisor; else container; a microVM under software emulation
 * last), unless an override ({@code AIRLOCK_RUNTIME}) names one.
 */
public final class Backends {
    private final Map<String, Backend> byName = new LinkedHashMap<>();
    private final @Nullable String override;
    private volatile @Nullable DefaultRuntime chosen;

    /** Why a runtime is the default, in words for doctor, setup and error messages. */
    public record DefaultRuntime(String name, String reason) {}

    public Backends(List<Backend> all) {
        this(all, null);
    }

    /** {@code override}: the runtime to use when none is asked for (null or blank: follow the host). */
    public Backends(List<Backend> all, @Nullable String override) {
        for (Backend b : all) {
            if (byName.putIfAbsent(b.name(), b) != null) {
                throw new IllegalArgumentException("two backends are named " + b.name());
            }
        }
        if (byName.isEmpty()) {
            throw new IllegalArgumentException("no backends");
        }
        this.override = override == null || override.isBlank() ? null : override.strip();
    }

    public List<Backend> all() {
        return List.copyOf(byName.values());
    }

    public List<String> names() {
        return List.copyOf(byName.keySet());
    }

    /** The runtime a sandbox gets when none is asked for. */
    public String defaultName() {
        return defaultRuntime().name();
    }

    /** The default runtime and why; measured on first use (each backend caches its own fit). */
    public DefaultRuntime defaultRuntime() {
        DefaultRuntime d = chosen;
        if (d == null) {
            synchronized (this) {
                d = chosen;
                if (d == null) {
                    d = choose();
                    chosen = d;
                }
            }
        }
        return d;
    }

    private DefaultRuntime choose() {
        if (override != null) {
            if (!byName.containsKey(override)) {
                throw new SandboxException(
                        "AIRLOCK_RUNTIME=" + override + " is not a runtime: use " + String.join(", ", names()));
            }
            return new DefaultRuntime(override, "AIRLOCK_RUNTIME=" + override);
        }
        List<Backend> working = new ArrayList<>();
        List<String> notHere = new ArrayList<>();
        for (Backend b : byName.values()) {
            HostFit fit = b.hostFit();
            if (fit.works()) {
                working.add(b);
            } else {
                notHere.add(b.name() + ": " + fit.unavailable());
            }
        }
        if (working.isEmpty()) {
            // Nothing runs: keep the first, whose start will say why.
            Backend first = byName.values().iterator().next();
            return new DefaultRuntime(first.name(), "no runtime works here (" + String.join("; ", notHere) + ")");
        }
        Backend best = working.stream()
                .min(Comparator.comparingInt(b -> b.hostFit().boundary().ordinal()))
                .orElseThrow();
        Boundary boundary = best.hostFit().boundary();
        String reason = "the strongest isolation that works here: " + boundary.label();
        List<String> weaker = working.stream()
                .filter(b -> b != best)
                .map(b -> b.name() + " (" + b.hostFit().boundary().label() + ")")
                .toList();
        if (!weaker.isEmpty()) {
            reason += "; also available: " + String.join(", ", weaker);
        }
        if (!notHere.isEmpty()) {
            reason += "; not here: " + String.join("; ", notHere);
        }
        return new DefaultRuntime(best.name(), reason);
    }

    /** The backend for a new sandbox: known, and able to run here. */
    public Backend forNew(String name) {
        Backend b = byName.get(name);
        if (b == null) {
            throw new SandboxException("unknown runtime '" + name + "': use " + String.join(" or ", names()));
        }
        Optional<String> why = b.unavailableReason();
        if (why.isPresent()) {
            throw SandboxException.unavailable(
                    "the " + name + " runtime cannot run here: " + why.get() + alternatives(name));
        }
        return b;
    }

    /** "; use --runtime X or --runtime Y instead" for the runtimes other than {@code name} that work here. */
    public String alternatives(String name) {
        List<String> others = new ArrayList<>();
        for (Backend o : byName.values()) {
            if (!o.name().equals(name) && o.unavailableReason().isEmpty()) {
                others.add("--runtime " + o.name());
            }
        }
        return others.isEmpty() ? "" : "; use " + String.join(" or ", others) + " instead";
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
