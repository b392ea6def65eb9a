package dev.airlock.sdk;

import java.time.Instant;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * A sandbox as the daemon describes it at one moment.
 *
 * @param runtime {@code microvm}, {@code container}, ...
 * @param state {@code CREATED}, {@code RUNNING}, {@code STOPPED}, {@code FAILED} or {@code PAUSED}
 * @param network {@code none}, {@code proxy} or {@code nat}
 * @param workspace the host repository of its workspace, or null
 */
public record SandboxInfo(
        String id,
        String name,
        String runtime,
        String isolation,
        String image,
        String state,
        @Nullable Resources resources,
        @Nullable Map<String, String> env,
        @Nullable String workdir,
        Instant created,
        @Nullable Instant started,
        @Nullable String error,
        @Nullable String network,
        @Nullable String origin,
        @Nullable String workspace) {

    /** Whether it runs now (as of this description). */
    public boolean running() {
        return "RUNNING".equals(state);
    }

    /**
     * A sandbox's limits.
     *
     * @param timeout its lifetime, an ISO-8601 duration, or null
     */
    public record Resources(
            int cpus,
            int memoryMiB,
            long diskMiB,
            int pids,
            @Nullable String timeout) {}
}
