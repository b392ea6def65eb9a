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
        return HostBackends.engine(dirs, progress, templates);
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
        return HostBackends.gvisor(engine);
    }

    /** The engine's microVM backend (templates, warm pool). */
    public static MicrovmBackend microvm(SandboxEngine engine) {
        return HostBackends.microvm(engine);
    }
}
