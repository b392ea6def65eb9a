package dev.airlock.testing;

import dev.airlock.daemon.HostBackends;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.gvisor.GvisorBackend;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.local.LocalSandboxService;
import dev.airlock.microvm.MicrovmBackend;

/** Engines and services over this host's real backends, for tests that work below the daemon. */
public final class Engines {
    private Engines() {}

    /** The engine over this host's backends; {@code templates}: whether microVMs start from VM templates. */
    public static SandboxEngine engine(AirlockDirs dirs, Progress progress, boolean templates) {
        return new SandboxEngine(
                dirs,
                HostBackends.create(dirs, progress, new HostBackends.Options(templates, 0, 2048, null)),
                progress);
    }

    public static SandboxEngine engine(AirlockDirs dirs, Progress progress) {
        return engine(dirs, progress, true);
    }

    /** The daemon's sandbox service, in this process (without the HTTP API in front). */
    public static LocalSandboxService service(AirlockDirs dirs, Progress progress, boolean templates) {
        return new LocalSandboxService(dirs, engine(dirs, progress, templates), null);
    }

    /** The engine's gVisor backend (warm pool). */
    public static GvisorBackend gvisor(SandboxEngine engine) {
        return backend(engine, GvisorBackend.class);
    }

    /** The engine's microVM backend (templates, warm pool). */
    public static MicrovmBackend microvm(SandboxEngine engine) {
        return backend(engine, MicrovmBackend.class);
    }

    private static <T> T backend(SandboxEngine engine, Class<T> type) {
        return engine.backends().all().stream()
                .filter(type::isInstance)
                .map(type::cast)
                .findFirst()
                .orElseThrow();
    }
}
