package dev.airlock.backend;

import java.util.Optional;
import java.util.OptionalLong;
import org.jspecify.annotations.Nullable;

/**
 * How a backend fits this host, as measured here (and cached by the backend): what isolates its
 * sandboxes, whether it runs and why not, and how long its runtime takes to start.
 *
 * @param boundary what separates its sandboxes from the host on this host
 * @param unavailable why it cannot run sandboxes here, or null when it can
 * @param startMillis a measured start of its runtime, or -1 when not measured
 * @param startWhat what was timed, e.g. "runsc do true" or "guest kernel boot to the agent"
 * @param detail the version, platform or accelerator it uses here and why, in words
 */
public record HostFit(
        Boundary boundary, @Nullable String unavailable, long startMillis, String startWhat, String detail) {

    public boolean works() {
        return unavailable == null;
    }

    public Optional<String> whyNot() {
        return Optional.ofNullable(unavailable);
    }

    public OptionalLong start() {
        return startMillis >= 0 ? OptionalLong.of(startMillis) : OptionalLong.empty();
    }
}
