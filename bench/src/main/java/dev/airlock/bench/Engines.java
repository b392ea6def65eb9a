package dev.airlock.bench;

import dev.airlock.daemon.HostBackends;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.gvisor.GvisorBackend;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.microvm.MicrovmBackend;

/** Engines over this host's real backends, as the daemon makes them, for benchmarks below the daemon. */
final class Engines {
    private Engines() {}

    /** {@code templates}: whether microVMs start from VM templates. */
    static SandboxEngine engine(AirlockDirs dirs, Progress progress, boolean templates) {
        return new SandboxEngine(
                dirs,
                HostBackends.create(dirs, progress, new HostBackends.Options(templates, 0, 2048, null)),
                progress);
    }

    static MicrovmBackend microvm(SandboxEngine engine) {
        return backend(engine, MicrovmBackend.class);
    }

    static GvisorBackend gvisor(SandboxEngine engine) {
        return backend(engine, GvisorBackend.class);
    }

    private static <T> T backend(SandboxEngine engine, Class<T> type) {
        return engine.backends().all().stream()
                .filter(type::isInstance)
                .map(type::cast)
                .findFirst()
                .orElseThrow();
    }
}
