package dev.airlock.runtimes;

import dev.airlock.backend.Backend;
import dev.airlock.backend.Backends;
import dev.airlock.backend.HostFit;
import dev.airlock.daemon.HostBackends;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.setup.Setup;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The runtimes this host has, for the host tools that run before any daemon (doctor, setup, the
 * CLI readying a create): how each fits here, which is the default and why, and readying one
 * with its progress on the user's terminal. The same backends and the same cached measurements
 * as the daemon's, so both name the same default.
 */
public final class HostRuntimes {
    private final AirlockDirs dirs;
    private final Progress progress;
    private final Backends backends;

    /** One runtime on this host, in words. */
    public record Line(
            String runtime,
            String isolation,
            boolean works,
            @Nullable String whyNot,
            long startMillis,
            String startWhat,
            String detail) {}

    /**
     * What {@link #prepare} readied.
     *
     * @param runtime the runtime readied (the default when none was named)
     * @param reason why it is the default, or that it was asked for
     * @param built what this run had to build or install
     */
    public record Prepared(String runtime, String reason, Image image, List<String> built) {}

    public HostRuntimes(AirlockDirs dirs, Progress progress) {
        this.dirs = dirs;
        this.progress = progress;
        this.backends = HostBackends.forHostTools(dirs, progress);
    }

    /** Every runtime, measured here (once; the measurements are cached across processes). */
    public List<Line> examine() {
        List<Line> out = new ArrayList<>();
        for (Backend b : backends.all()) {
            HostFit fit = b.hostFit();
            out.add(new Line(
                    b.name(),
                    fit.boundary().label(),
                    fit.works(),
                    fit.unavailable(),
                    fit.startMillis(),
                    fit.startWhat(),
                    fit.detail()));
        }
        return out;
    }

    /** The runtime a sandbox gets when none is asked for, and why. */
    public record Default(String name, String reason) {}

    public Default defaultRuntime() {
        Backends.DefaultRuntime d = backends.defaultRuntime();
        return new Default(d.name(), d.reason());
    }

    /**
     * Readies a runtime ({@code runtime}, else the default): packages and the base image, then
     * what only it needs (a microVM's kernel, gVisor's platform). The other runtimes are readied
     * on their first use.
     */
    public Prepared prepare(@Nullable String runtime) {
        return prepare(runtime, true);
    }

    /**
     * As {@link #prepare(String)}; {@code checkPackages} false skips the package check when the
     * base image is there (the CLI before every create: the launcher checks packages itself).
     */
    public Prepared prepare(@Nullable String runtime, boolean checkPackages) {
        List<String> built = new ArrayList<>();
        Image image = checkPackages ? null : new ImageStore(dirs).find("base").orElse(null);
        if (image == null) {
            image = new Setup(dirs, progress).ensureBase(built);
        }
        String name;
        String reason;
        if (runtime != null) {
            name = runtime;
            reason = "asked for";
        } else {
            Backends.DefaultRuntime d = backends.defaultRuntime();
            name = d.name();
            reason = d.reason();
        }
        backends.forNew(name).prepareHost();
        return new Prepared(name, reason, image, built);
    }
}
