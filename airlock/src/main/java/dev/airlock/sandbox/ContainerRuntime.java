package dev.airlock.sandbox;

import dev.airlock.container.Container;
import dev.airlock.container.ContainerBackend;
import dev.airlock.container.ContainerSpec;
import dev.airlock.container.OciConfig;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.NatCgroup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * Sandboxes as OCI containers (crun or runc): the image is mounted once, read-only, and joined
 * with the sandbox's own upper directory by overlayfs; the agent runs as the container's PID 1
 * on a unix socket. See docs/container-mode.md for the isolation and the cgroup layout.
 */
final class ContainerRuntime implements SandboxRuntime {
    private final ContainerBackend backend;
    private final Supplier<Path> agent;
    private final Duration startLimit;
    private final AirlockDirs dirs;

    ContainerRuntime(ContainerBackend backend, Supplier<Path> agent, Duration startLimit, AirlockDirs dirs) {
        this.backend = backend;
        this.agent = agent;
        this.startLimit = startLimit;
        this.dirs = dirs;
    }

    @Override
    public String name() {
        return "container";
    }

    static String containerId(Sandbox s) {
        return "airlock-" + s.id().substring(0, 16);
    }

    private static Path containerDir(Path dir) {
        return dir.resolve("container");
    }

    @Override
    public long launch(Sandbox s, Path dir, Path runtimeDir) {
        // A container that died without being deleted (a crashed host process, a killed init)
        // still holds its id and mounts: clear it first; its upper layer, the sandbox's data, stays.
        Container previous = container(s, dir, runtimeDir);
        if (backend.state(previous).isPresent()) {
            backend.destroy(previous);
        }
        ContainerSpec spec = ContainerSpec.builder(
                        containerId(s), Path.of(s.imageFile()), containerDir(dir), agent.get())
                .socketDir(runtimeDir)
                .hostname(s.name())
                .cpus(s.resources().cpus())
                .memoryMiB(s.resources().memoryMiB())
                .pids(s.resources().pids())
                .network(
                        s.nat()
                                ? new ContainerSpec.Network.Nat(
                                        NatCgroup.of(dirs, s.id()).procs())
                                : new ContainerSpec.Network.None())
                .build();
        return backend.initPid(backend.create(spec, startLimit));
    }

    @Override
    public boolean running(Sandbox s, Path dir, Path runtimeDir) {
        return backend.state(container(s, dir, runtimeDir))
                .map(st -> st.running())
                .orElse(false);
    }

    @Override
    public void kill(Sandbox s, Path dir, Path runtimeDir) {
        backend.destroy(container(s, dir, runtimeDir));
    }

    @Override
    public void awaitStop(Sandbox s, Path dir, Path runtimeDir, Duration grace) {
        Container c = container(s, dir, runtimeDir);
        long deadline = System.nanoTime() + grace.toNanos();
        while (System.nanoTime() < deadline
                && backend.state(c).map(st -> st.running()).orElse(false)) {
            try {
                // The runtime gives no exit event to wait on; the agent exits within its 2 s grace.
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        backend.destroy(c);
    }

    @Override
    public void release(Sandbox s, Path dir, Path runtimeDir) {
        if (Files.isDirectory(containerDir(dir))) {
            backend.destroy(container(s, dir, runtimeDir));
            backend.unmountAllUnder(containerDir(dir));
        }
    }

    @Override
    public Path agentSocket(Path runtimeDir) {
        return runtimeDir.resolve(OciConfig.AGENT_SOCKET);
    }

    /** The container of a sandbox as the backend names it, whether or not the runtime still has it. */
    private Container container(Sandbox s, Path dir, Path runtimeDir) {
        String id = containerId(s);
        return new Container(
                id, containerDir(dir), Path.of(s.imageFile()), agentSocket(runtimeDir), backend.cgroupFor(id));
    }
}
