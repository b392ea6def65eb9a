package dev.airlock.cli;

import dev.airlock.net.Secret;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ProgressListener;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import dev.airlock.service.WorkspaceSpec;
import dev.airlock.workspace.AgentPreset;
import dev.airlock.workspace.ProjectConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * How {@code run} and {@code create} make their sandbox: a plain one, or (with
 * {@code --workspace}) one the service fills with a copy of the repository, its setup done. What
 * stays here is what only the user's shell has: the agent's command line and the credentials
 * passed to it explicitly.
 */
final class WorkspaceFlow {
    private final CreateSpec spec;
    private final @Nullable Path repo;
    private final boolean uncommitted;
    private final List<String> agentCommand;
    private final Map<String, String> agentEnv;

    private WorkspaceFlow(
            CreateSpec spec,
            @Nullable Path repo,
            boolean uncommitted,
            List<String> agentCommand,
            Map<String, String> agentEnv) {
        this.spec = spec;
        this.repo = repo;
        this.uncommitted = uncommitted;
        this.agentCommand = agentCommand;
        this.agentEnv = agentEnv;
    }

    static WorkspaceFlow plan(SandboxCommands.CreateFlags create, SandboxCommands.WorkspaceFlags ws) {
        if (ws.dir == null && ws.uncommitted) {
            throw new SandboxException("--uncommitted needs --workspace DIR");
        }
        Path repo = ws.dir;
        if (repo != null && !Files.isDirectory(repo)) {
            throw new SandboxException("--workspace " + repo + ": no such directory");
        }
        // The agent's command and the credentials it needs are the user's to give: read here.
        ProjectConfig cfg = repo != null ? ProjectConfig.of(repo.toAbsolutePath()) : ProjectConfig.none();
        List<String> agentCommand = List.of();
        AgentPreset preset = null;
        if (ws.agent != null) {
            if (!ws.agent.isEmpty()) {
                preset = AgentPreset.find(ws.agent).orElse(null);
                agentCommand = preset != null ? List.of() : List.of("sh", "-c", ws.agent);
            } else if (!cfg.agentCommand().isEmpty()) {
                agentCommand = cfg.agentCommand();
            } else if (cfg.agentPreset() != null) {
                String name = cfg.agentPreset();
                preset = AgentPreset.find(name)
                        .orElseThrow(() -> new SandboxException("airlock.toml [agent].preset '" + name
                                + "' is not a known agent; see: airlock agent ls"));
            } else {
                throw new SandboxException(
                        "--agent without a command needs [agent].command or [agent].preset in airlock.toml");
            }
        }
        if (ws.agent == null && (ws.task != null || ws.taskFile != null)) {
            throw new SandboxException("--task and --task-file need --agent");
        }
        Map<String, String> agentEnv = agentEnv(ws, cfg);
        String task = task(ws);
        if (task != null) {
            agentEnv.put(AgentPreset.TASK_VARIABLE, task);
        }
        CreateSpec spec = create.toSpec();
        if (preset != null) {
            if (task == null) {
                throw new SandboxException(
                        "--agent " + preset.name() + " needs its task: --task \"...\" or --task-file" + " FILE");
            }
            agentCommand = List.of("sh", "-c", preset.script());
            // The preset's own image, its CLI installed once; an image the user chose gets the
            // CLI installed at run time instead (the preset's script does it when it is missing).
            String prepared = spec.image() == null && cfg.image() == null
                    ? AgentImages.ensure(
                                    ImageCommand.store(),
                                    preset,
                                    create.runtime != null ? create.runtime : cfg.runtime())
                            .name()
                    : null;
            spec = withPreset(spec, preset, cfg, prepared);
        }
        // Kernel, base image and a named built-in image are built here, with their progress on
        // this terminal; a workspace's own image is built by the service, which reports progress.
        SandboxCommands.preflight(create.runtime != null ? create.runtime : cfg.runtime(), create.image);
        return new WorkspaceFlow(
                spec, repo == null ? null : repo.toAbsolutePath(), ws.uncommitted, agentCommand, agentEnv);
    }

    /** Credentials reach the agent only when named on the command line, never copied implicitly. */
    private static Map<String, String> agentEnv(SandboxCommands.WorkspaceFlags ws, ProjectConfig cfg) {
        Map<String, String> env = new LinkedHashMap<>();
        if (ws.agentEnvFile != null) {
            List<String> lines;
            try {
                lines = Files.readAllLines(ws.agentEnvFile);
            } catch (IOException e) {
                String why = e instanceof java.nio.file.NoSuchFileException
                        ? "no such file"
                        : e instanceof java.nio.file.AccessDeniedException ? "permission denied" : e.getMessage();
                throw new SandboxException("--agent-env-file " + ws.agentEnvFile + ": cannot read it (" + why + ")");
            }
            for (String line : lines) {
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

    private static @Nullable String task(SandboxCommands.WorkspaceFlags ws) {
        if (ws.task != null && ws.taskFile != null) {
            throw new SandboxException("give the task once: --task or --task-file");
        }
        if (ws.taskFile == null) {
            return ws.task;
        }
        try {
            return Files.readString(ws.taskFile).strip();
        } catch (IOException e) {
            throw new SandboxException("--task-file " + ws.taskFile + ": cannot read it (" + e.getMessage() + ")");
        }
    }

    /**
     * What a preset adds to the sandbox: its prepared image unless one is chosen, its API hosts (and the
     * host's npm registry, for the install) on the allowlist, and its key as a secret bound to
     * the API hosts, so the guest holds only a placeholder.
     */
    static CreateSpec withPreset(CreateSpec s, AgentPreset preset, ProjectConfig cfg, @Nullable String preparedImage) {
        List<String> allow = new ArrayList<>(s.allowHosts() == null ? List.of() : s.allowHosts());
        allow.addAll(preset.apiHosts());
        String registry = AgentPreset.registryHost();
        if (registry != null) {
            allow.add(registry);
        }
        List<Secret> secrets = new ArrayList<>(s.secrets() == null ? List.of() : s.secrets());
        if (secrets.stream().noneMatch(x -> x.name().equals(preset.key()))) {
            String value = System.getenv(preset.key());
            if (value == null) {
                throw new SandboxException("--agent " + preset.name() + " needs its API key in this shell's "
                        + preset.key() + " (it stays on the host; the sandbox gets a placeholder)");
            }
            secrets.add(Secret.create(preset.key(), value, String.join(",", preset.apiHosts())));
        }
        String image = s.image() != null
                ? s.image()
                : cfg.image() != null ? cfg.image() : preparedImage != null ? preparedImage : preset.image();
        return s.toBuilder().image(image).allowHosts(allow).secrets(secrets).build();
    }

    /** Makes the sandbox: started and left running ({@code start}), or created and stopped. */
    SandboxInfo make(SandboxService client, boolean start) {
        Path r = repo;
        if (r == null) {
            SandboxInfo s = client.create(spec);
            return start ? client.start(s.id()) : s;
        }
        return client.createWorkspace(
                new WorkspaceSpec(r.toString(), uncommitted, spec, start), new ProgressListener() {
                    @Override
                    public void step(String message) {
                        System.err.println("airlock: " + message);
                    }

                    @Override
                    public void output(byte[] bytes) {
                        System.err.write(bytes, 0, bytes.length);
                        System.err.flush();
                    }
                });
    }

    CreateSpec spec() {
        return spec;
    }

    boolean hasWorkspace() {
        return repo != null;
    }

    List<String> agentCommand() {
        return agentCommand;
    }

    Map<String, String> agentEnv() {
        return agentEnv;
    }
}
