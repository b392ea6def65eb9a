package dev.airlock.daemon;

import dev.airlock.backend.Backends;
import dev.airlock.container.ContainerBackend;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.gvisor.GvisorBackend;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.microvm.MicrovmBackend;
import java.time.Duration;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The backends this build of Airlock has, made for one host: the one place that names them all.
 * The default runtime follows the host ({@link Backends#defaultRuntime}: the strongest isolation
 * that works here) unless {@code AIRLOCK_RUNTIME} names one. A backend whose tools are missing
 * here is still listed and says why it cannot run (the others keep working).
 */
public final class HostBackends {
    private HostBackends() {}

    /**
     * How the daemon runs its backends, from its environment.
     *
     * @param templates whether new microVMs are restored from VM templates ({@code AIRLOCK_TEMPLATES=off}: cold boots)
     * @param warmPool sandboxes kept ready per configuration ({@code AIRLOCK_WARM_POOL}, default 0): restored
     *     microVMs per template, started gVisor sandboxes per image and limits
     * @param warmPoolMiB guest memory the warm pool may hold in all ({@code AIRLOCK_WARM_POOL_MIB}, default 2048)
     * @param idlePause pause a sandbox without a client this long ({@code AIRLOCK_IDLE_PAUSE} seconds; null: never)
     */
    public record Options(
            boolean templates,
            int warmPool,
            int warmPoolMiB,
            @Nullable Duration idlePause) {
        public static Options fromEnvironment() {
            int idle = envInt("AIRLOCK_IDLE_PAUSE", 0);
            return new Options(
                    !"off".equals(System.getenv("AIRLOCK_TEMPLATES")),
                    envInt("AIRLOCK_WARM_POOL", 0),
                    envInt("AIRLOCK_WARM_POOL_MIB", 2048),
                    idle > 0 ? Duration.ofSeconds(idle) : null);
        }

        /** What a process that is not the daemon uses: templates on, no pool, no idle pause. */
        public static Options defaults() {
            return new Options(true, 0, 2048, null);
        }
    }

    /** The backends of this host, as any process may use them (no warm pool). */
    public static Backends create(AirlockDirs dirs, Progress progress, Options options) {
        return assemble(
                dirs,
                new MicrovmBackend(dirs, progress, options.templates()),
                new GvisorBackend(dirs, SandboxEngine.BOOT_TIMEOUT, progress));
    }

    /**
     * The backends as the daemon runs them: the warm pools filled as configured (0, the default,
     * also ends any pooled sandboxes a previous daemon left).
     */
    static Backends forDaemon(AirlockDirs dirs, Progress progress, Options options) {
        Backends backends = create(dirs, progress, options);
        for (var b : backends.all()) {
            if (b instanceof MicrovmBackend microvm) {
                microvm.enableWarmPool(options.warmPool(), options.warmPoolMiB());
            } else if (b instanceof GvisorBackend gvisor) {
                gvisor.enableWarmPool(options.warmPool(), options.warmPoolMiB());
            }
        }
        return backends;
    }

    /**
     * The backends for a process that only examines or readies the host (doctor, setup, the CLI
     * before a create): it touches no warm pool, which the running daemon owns.
     */
    public static Backends forHostTools(AirlockDirs dirs, Progress progress) {
        return create(dirs, progress, new Options(true, 0, 2048, null));
    }

    /**
     * An engine over this host's backends, for a process that is not the daemon (tests,
     * benchmarks): {@code templates}, whether microVMs start from VM templates.
     */
    public static SandboxEngine engine(AirlockDirs dirs, Progress progress, boolean templates) {
        return new SandboxEngine(dirs, create(dirs, progress, new Options(templates, 0, 2048, null)), progress);
    }

    /** The microVM backend among an engine's backends (its templates and warm pool). */
    public static MicrovmBackend microvm(SandboxEngine engine) {
        return backend(engine, MicrovmBackend.class);
    }

    /** The gVisor backend among an engine's backends (its warm pool). */
    public static GvisorBackend gvisor(SandboxEngine engine) {
        return backend(engine, GvisorBackend.class);
    }

    private static <T> T backend(SandboxEngine engine, Class<T> type) {
        return engine.backends().all().stream()
                .filter(type::isInstance)
                .map(type::cast)
                .findFirst()
                .orElseThrow(() -> new IllegalStateException("this engine has no " + type.getSimpleName()));
    }

    private static Backends assemble(AirlockDirs dirs, MicrovmBackend microvm, GvisorBackend gvisor) {
        return new Backends(
                List.of(microvm, gvisor, new ContainerBackend(dirs, SandboxEngine.BOOT_TIMEOUT)),
                System.getenv("AIRLOCK_RUNTIME"));
    }

    private static int envInt(String name, int fallback) {
        String v = System.getenv(name);
        try {
            return v == null || v.isBlank() ? fallback : Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            System.err.println("airlockd: ignoring " + name + "=" + v + " (not a number)");
            return fallback;
        }
    }
}
