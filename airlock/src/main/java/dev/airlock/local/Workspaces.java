package dev.airlock.local;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.ProgressListener;
import dev.airlock.service.PullResult;
import dev.airlock.service.PullSpec;
import dev.airlock.service.SandboxSession;
import dev.airlock.service.WorkspaceSpec;
import dev.airlock.workspace.HostRepo;
import dev.airlock.workspace.ProjectConfig;
import dev.airlock.workspace.Workspace;
import dev.airlock.workspace.WorkspaceMeta;
import dev.airlock.workspace.WorkspaceTemplates;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Workspace sandboxes, done in the daemon for every front end: the repository's airlock.toml
 * fills in what the request leaves out, a saved setup (a workspace template) is used when one
 * matches the setup key, the repository goes in as a git bundle, setup runs (and is saved) only
 * on a miss; diff and pull work on running and stopped sandboxes (a stopped one is booted for
 * the time). Which repository and base a sandbox belongs to is kept on the host.
 */
final class Workspaces {
    private final AirlockDirs dirs;
    private final SandboxEngine engine;
    private final LocalSandboxService service;

    Workspaces(AirlockDirs dirs, SandboxEngine engine, LocalSandboxService service) {
        this.dirs = dirs;
        this.engine = engine;
        this.service = service;
    }

    Sandbox create(WorkspaceSpec spec, ProgressListener progress) {
        HostRepo repo = HostRepo.open(Path.of(spec.repo()));
        ProjectConfig cfg = ProjectConfig.of(repo.root());
        // The image is built here when needed, with its progress shown to the client.
        Image image = new ImageStore(dirs).require(CreatePlan.imageOf(spec.sandbox(), cfg), progress::step);
        CreatePlan plain = CreatePlan.of(spec.sandbox(), cfg, null, Workspace.PATH, image.config());
        String key = null;
        Path template = null;
        if (!cfg.setup().isEmpty()) {
            String runtime = plain.options().runtime() != null
                    ? plain.options().runtime()
                    : engine.backends().defaultName();
            try {
                key = Workspace.setupKey(repo, cfg, image.id(), runtime, spec.uncommitted());
            } catch (IOException e) {
                throw new SandboxException("cannot read the lockfiles of " + repo.root() + ": " + e.getMessage(), e);
            }
            template = new WorkspaceTemplates(dirs).layer(key).orElse(null);
        }
        CreatePlan plan = CreatePlan.of(spec.sandbox(), cfg, template, Workspace.PATH, image.config());
        Sandbox s = service.create(plan);
        try {
            s = service.attach(engine.start(s.id()));
            s = prepare(s, repo, cfg, key, template != null, spec.uncommitted(), progress);
            if (!spec.start()) {
                service.stop(s.id(), Duration.ofSeconds(10));
                s = engine.inspect(s.id());
            }
            return s;
        } catch (IOException e) {
            throw failed(s, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failed(s, e);
        } catch (RuntimeException e) {
            throw failed(s, e);
        }
    }

    /**
     * A workspace that could not be made is not left half made: the sandbox goes (its disk holds
     * nothing of the user's yet), and the error says why.
     */
    private SandboxException failed(Sandbox s, Exception e) {
        String why = e instanceof SandboxException ? String.valueOf(e.getMessage()) : String.valueOf(e);
        SandboxException.Kind kind = e instanceof SandboxException se ? se.kind() : SandboxException.Kind.FAILED;
        boolean pushed = java.nio.file.Files.isRegularFile(engine.paths(s).dir().resolve(WorkspaceMeta.FILE));
        try {
            if (pushed) {
                // The repository is in (and setup may have left work): keep it, stopped.
                service.stop(s.id(), Duration.ofSeconds(10));
            } else {
                service.remove(s.id(), true);
            }
        } catch (RuntimeException cleanup) {
            e.addSuppressed(cleanup);
        }
        String message = pushed
                ? why + "; sandbox " + s.name() + " is kept (stopped) with its workspace: bring back what it has with"
                        + " airlock pull " + s.name() + " (or airlock commit " + s.name() + " -m MESSAGE), remove it"
                        + " with airlock rm " + s.name()
                : "cannot set up the workspace of sandbox '" + s.name() + "' (removed): " + why;
        return new SandboxException(kind, message, e);
    }

    /** Copies the repo into the running sandbox and makes its dependencies ready. */
    private Sandbox prepare(
            Sandbox s,
            HostRepo repo,
            ProjectConfig cfg,
            @Nullable String setupKey,
            boolean templateHit,
            boolean uncommitted,
            ProgressListener progress)
            throws IOException, InterruptedException {
        Workspace.Pushed pushed;
        boolean runSetup = setupKey != null && !templateHit;
        try (SandboxSession session = service.session(s.id())) {
            GuestChannel ch = session.channel();
            pushed = Workspace.push(ch, repo, uncommitted, Workspace.Bounds.DEFAULT);
            // Recorded before setup runs: a sandbox whose setup failed or was cut short can still be pulled.
            new WorkspaceMeta(repo.root().toString(), pushed.base(), repo.branch(), pushed.uncommitted(), setupKey)
                    .write(engine.paths(s).dir());
            if (runSetup) {
                progress.step("running setup (" + cfg.setup().size() + " commands); the result is"
                        + " kept for the next sandbox with the same lockfiles");
                OutputStream out = new ProgressOutput(progress);
                Workspace.setup(ch, cfg.setup(), out, out, Workspace.Bounds.DEFAULT);
            } else if (setupKey != null) {
                progress.step("dependencies ready from workspace template " + setupKey.substring(0, 12));
            }
        }
        if (runSetup && setupKey != null) {
            service.stop(s.id(), Duration.ofSeconds(30));
            new WorkspaceTemplates(dirs)
                    .save(setupKey, engine.layer(s), repo.root().toString(), cfg.setup());
            s = service.attach(engine.start(s.id()));
        }
        return s;
    }

    void diff(String ref, OutputStream out) throws IOException {
        withWorkspace(ref, (ch, meta) -> {
            Workspace.diff(ch, meta.base(), out, Workspace.Bounds.DEFAULT);
            return Boolean.TRUE;
        });
    }

    PullResult pull(String ref, PullSpec spec) throws IOException {
        Sandbox s = engine.inspect(ref);
        String branch = spec.branch() != null ? spec.branch() : "airlock/" + s.name();
        String message = spec.message() != null ? spec.message() : "Work from Airlock sandbox " + s.name();
        Workspace.Pulled p = withWorkspace(
                ref,
                (ch, meta) -> Workspace.pull(
                        ch,
                        HostRepo.open(Path.of(meta.repo())),
                        meta.base(),
                        branch,
                        spec.includeUncommitted(),
                        message,
                        Workspace.Bounds.DEFAULT));
        return new PullResult(p.branch(), p.base(), p.head(), p.commits(), p.uncommittedLeft());
    }

    /** Work on a sandbox's workspace whether it runs or not: a stopped one is booted for the time. */
    private interface WithWorkspace<T> {
        T apply(GuestChannel ch, WorkspaceMeta meta) throws IOException, InterruptedException;
    }

    private <T> T withWorkspace(String ref, WithWorkspace<T> work) throws IOException {
        Sandbox s = engine.inspect(ref);
        WorkspaceMeta meta = WorkspaceMeta.read(engine.paths(s).dir(), s.name());
        boolean booted = false;
        if (s.state() != SandboxState.RUNNING) {
            service.start(s.id());
            booted = true;
        }
        try (SandboxSession session = service.session(s.id())) {
            return work.apply(session.channel(), meta);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while working on the workspace of " + s.name(), e);
        } finally {
            if (booted) {
                service.stop(s.id(), Duration.ofSeconds(10));
            }
        }
    }
}
