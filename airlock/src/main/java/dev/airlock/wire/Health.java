package dev.airlock.wire;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * {@code GET /v1/health}: the API version, the daemon's pid, the data directory it serves, the
 * build of Airlock it runs and the TCP addresses it also serves the API on ({@code airlock serve}).
 */
public record Health(
        String version, long pid, String data, @Nullable String build, List<String> listen) {
    public Health {
        listen = List.copyOf(listen);
    }
}
