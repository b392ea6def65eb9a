package dev.airlock.cli;

import dev.airlock.api.ApiTypes;
import dev.airlock.api.DaemonClient;
import dev.airlock.guest.GuestChannel;
import dev.airlock.image.Image;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxEngine;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxStore;
import dev.airlock.workspace.HostRepo;
import dev.airlock.workspace.ProjectConfig;
import dev.airlock.workspace.Workspace;
import dev.airlock.workspace.WorkspaceMeta;
import dev.airlock.workspace.WorkspaceTemplates;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.jspecify.annotations.Nullable;

/**
 * How {@code run}/{@code create} with {@code --workspace} set a sandbox up: the repo's
 * airlock.toml chooses image and resources, a workspace template is used when one matches the
 * setup key, the repo is pushed in, setup runs (and is saved as a template) only on a miss.
 */
final class WorkspaceFlow {
    private final @Nullable HostRepo repo;
    private final ProjectConfig cfg;
    private final ApiTypes.CreateRequest request;
    private final @Nullable String setupKey;
    private final boolean templateHit;
    private final boolean uncommitted;
    private final List<String> agentCommand;
    private final Map<String, String> agentEnv;

    private WorkspaceFlow(
            @Nullable HostRepo repo,
            ProjectConfig cfg,
            ApiTypes.CreateRequest request,
            @Nullable String setupKey,
            boolean templateHit,
            boolean uncommitted,
            List<String> agentCommand,
            Map<String, String> agentEnv) {
        this.repo = repo;
        this.cfg = cfg;
        this.request = request;
        this.setupKey = setupKey;
        this.templateHit = templateHit;
        this.uncommitted = uncommitted;
        this.agentCommand = agentCommand;
        this.agentEnv = agentEnv;
    }

    static WorkspaceFlow plan(SandboxCommands.CreateFlags create, SandboxCommands.WorkspaceFlags ws)
            throws IOException {
        if (ws.dir == null && ws.uncommitted) {
            throw new SandboxException("--uncommitted needs --workspace DIR");
        }
        HostRepo repo = ws.dir != null ? HostRepo.open(ws.dir) : null;
        ProjectConfig cfg = repo != null ? ProjectConfig.of(repo.root()) : ProjectConfig.none();
        List<String> agentCommand = List.of();
        if (ws.agent != null) {
            if (!ws.agent.isEmpty()) {
                agentCommand = List.of("sh", "-c", ws.agent);
            } else if (!cfg.agentCommand().isEmpty()) {
                agentCommand = cfg.agentCommand();
            } else {
                throw new SandboxException("--agent without a command needs [agent].command in airlock.toml");
            }
        }
        Map<String, String> agentEnv = agentEnv(ws, cfg);
        Image image = SandboxCommands.preflight(create.image(cfg));
        String key = null;
        Path template = null;
        if (repo != null && !cfg.setup().isEmpty()) {
            key = Workspace.setupKey(repo, cfg, image.id(), create.runtime(), ws.uncommitted);
            template = new WorkspaceTemplates(SandboxCommands.dirs()).layer(key).orElse(null);
        }
        ApiTypes.CreateRequest request = create.toRequest(cfg, template, repo != null ? Workspace.PATH : null);
        return new WorkspaceFlow(repo, cfg, request, key, template != null, ws.uncommitted, agentCommand, agentEnv);
    }

    /** Credentials reach the agent only when named on the command line, never copied implicitly. */
    private static Map<String, String> agentEnv(SandboxCommands.WorkspaceFlags ws, ProjectConfig cfg)
            throws IOException {
        Map<String, String> env = new LinkedHashMap<>();
        if (ws.agentEnvFile != null) {
            for (String line : Files.readAllLines(ws.agentEnvFile)) {
                String t = line.strip();
                if (t.isEmpty() || t.startsWith("#")) {
                    continue;
                }
                int eq = t.indexOf('=');
                if (eq <= 0) {
                    throw new SandboxException(ws.agentEnvFile + ": expected NAME=VALUE lines, got '" + t + "'");
                }
                env.put(t.substring(0, eq), t.substring(eq + 1));
            }
        }
        for (String name : ws.agentEnv) {
            String v = System.getenv(name);
            if (v == null) {
                throw new SandboxException("--agent-env " + name + ": no such variable in this shell's environment");
            }
            env.put(name, v);
        }
        if (ws.agent != null) {
            for (String needed : cfg.agentEnv()) {
                if (!env.containsKey(needed)) {
                    throw new SandboxException("the agent needs " + needed + " (airlock.toml [agent].env); pass it"
                            + " explicitly: --agent-env " + needed + " or --agent-env-file FILE");
                }
            }
        }
        return env;
    }

    ApiTypes.CreateRequest request() {
        return request;
    }

    @Nullable
    HostRepo repo() {
        return repo;
    }

    List<String> agentCommand() {
        return agentCommand;
    }

    Map<String, String> agentEnv() {
        return agentEnv;
    }

    /** Copies the repo into the running sandbox and makes its dependencies ready. */
    Sandbox prepare(DaemonClient client, Sandbox s) throws IOException, InterruptedException {
        HostRepo r = repo;
        if (r == null) {
            return s;
        }
        boolean runSetup = setupKey != null && !templateHit;
        Path dir = new SandboxStore(SandboxCommands.dirs().sandboxes()).dir(s.id());
        try (GuestChannel ch = client.openAgent(s.name())) {
            Workspace.Pushed pushed = Workspace.push(ch, r, uncommitted);
            // Recorded before setup runs: a sandbox whose setup failed or was cut short can still be pulled.
            new WorkspaceMeta(r.root().toString(), pushed.base(), r.branch(), pushed.uncommitted(), setupKey)
                    .write(dir);
            if (runSetup) {
                System.err.println("airlock: running setup (" + cfg.setup().size() + " commands); the result is"
                        + " kept for the next sandbox with the same lockfiles");
                OutputStream err = new FileOutputStream(FileDescriptor.err);
                Workspace.setup(ch, cfg.setup(), err, err);
            } else if (setupKey != null) {
                System.err.println("airlock: dependencies ready from workspace template " + setupKey.substring(0, 12));
            }
        }
        if (runSetup && setupKey != null) {
            client.stop(s.name(), 30);
            new WorkspaceTemplates(SandboxCommands.dirs())
                    .save(
                            setupKey,
                            SandboxEngine.layer(dir, s.runtime()),
                            r.root().toString(),
                            cfg.setup());
            s = client.start(s.name());
        }
        return s;
    }

    static Optional<WorkspaceMeta> meta(Sandbox s) {
        Path dir = new SandboxStore(SandboxCommands.dirs().sandboxes()).dir(s.id());
        return Files.isRegularFile(dir.resolve("workspace.json"))
                ? Optional.of(WorkspaceMeta.read(dir, s.name()))
                : Optional.empty();
    }
}
