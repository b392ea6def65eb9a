package dev.airlock.container;

import dev.airlock.backend.Backend;
import dev.airlock.backend.Capability;
import dev.airlock.backend.Launch;
import dev.airlock.backend.ResourceUse;
import dev.airlock.backend.SandboxPaths;
import dev.airlock.guest.AgentEndpoint;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.NatCgroup;
import dev.airlock.image.GuestAgent;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * Sandboxes as OCI containers (crun or runc): the image is mounted once, read-only, and joined
 * with the sandbox's own upper directory by overlayfs; the agent runs as the container's PID 1
 * on a unix socket. See docs/container-mode.md for the isolation and the cgroup layout. The OCI
 * runtime is looked up on first use, so a host without one still runs the other backends.
 */
public final class ContainerBackend implements Backend {
    public static final String NAME = "container";

    private final AirlockDirs dirs;
    private final Duration startLimit;
    private volatile @Nullable OciContainers containers;
    private volatile @Nullable String missing;

    public ContainerBackend(AirlockDirs dirs, Duration startLimit) {
        this.dirs = dirs;
        this.startLimit = startLimit;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String isolation(Sandbox s) {
        return "namespaces, cgroups and seccomp (shared host kernel)";
    }

    @Override
    public Set<Capability> capabilities() {
        return EnumSet.of(Capability.NAT);
    }

    @Override
    public Optional<String> unavailableReason() {
        containers();
        return Optional.ofNullable(missing);
    }

    /** The OCI runtime driver, found on first use; null (with {@link #missing} set) when there is none. */
    private @Nullable OciContainers containers() {
        OciContainers c = containers;
        if (c == null && missing == null) {
            synchronized (this) {
                if (containers == null && missing == null) {
                    try {
                        containers = new OciContainers(
                                OciRuntime.detect(dirs.runtime().resolve("oci")),
                                new ImageMounts(dirs.cache().resolve("mounts")));
                    } catch (ContainerException e) {
                        missing = e.getMessage();
                    }
                }
                c = containers;
            }
        }
        return c;
    }

    private OciContainers require() {
        OciContainers c = containers();
        if (c == null) {
            throw SandboxException.unavailable("the container runtime cannot run here: " + missing);
        }
        return c;
    }

    @Override
    public void releaseImage(Path imageFile) {
        OciContainers oci = containers();
        if (oci != null) {
            // A container mount of the image outlives its containers; it goes with the image.
            oci.images().release(imageFile);
        }
    }

    static String containerId(Sandbox s) {
        return "airlock-" + s.id().substring(0, 16);
    }

    private static Path containerDir(Path dir) {
        return dir.resolve("container");
    }

    @Override
    public void prepare(Sandbox s, SandboxPaths paths, @Nullable Path layerTemplate) {
        if (layerTemplate != null) {
            copyUpper(layerTemplate, containerDir(paths.dir()).resolve("upper"));
        }
    }

    @Override
    public Launch start(Sandbox s, SandboxPaths paths) {
        OciContainers oci = require();
        // A container that died without being deleted (a crashed host process, a killed init)
        // still holds its id and mounts: clear it first; its upper layer, the sandbox's data, stays.
        Container previous = container(oci, s, paths);
        if (oci.state(previous).isPresent()) {
            oci.destroy(previous);
        }
        ContainerSpec spec = ContainerSpec.builder(
                        containerId(s),
                        Path.of(s.imageFile()),
                        containerDir(paths.dir()),
                        GuestAgent.bundled(dirs).binary())
                .socketDir(paths.runtimeDir())
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
        // create returns once the agent answers.
        return new Launch(oci.initPid(oci.create(spec, startLimit)), "container", true);
    }

    @Override
    public boolean running(Sandbox s, SandboxPaths paths) {
        OciContainers oci = containers();
        return oci != null
                && oci.state(container(oci, s, paths)).map(st -> st.running()).orElse(false);
    }

    @Override
    public void kill(Sandbox s, SandboxPaths paths) {
        OciContainers oci = containers();
        if (oci != null) {
            oci.destroy(container(oci, s, paths));
        }
    }

    @Override
    public void awaitStop(Sandbox s, SandboxPaths paths, Duration grace) {
        OciContainers oci = require();
        Container c = container(oci, s, paths);
        long deadline = System.nanoTime() + grace.toNanos();
        while (System.nanoTime() < deadline
                && oci.state(c).map(st -> st.running()).orElse(false)) {
            try {
                // The runtime gives no exit event to wait on; the agent exits within its 2 s grace.
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        oci.destroy(c);
    }

    @Override
    public void release(Sandbox s, SandboxPaths paths) {
        OciContainers oci = containers();
        if (oci != null && Files.isDirectory(containerDir(paths.dir()))) {
            oci.destroy(container(oci, s, paths));
            oci.unmountAllUnder(containerDir(paths.dir()));
        }
    }

    @Override
    public AgentEndpoint agent(Sandbox s, SandboxPaths paths) {
        return new ContainerAgentSocket(paths.runtimeDir().resolve(OciConfig.AGENT_SOCKET));
    }

    @Override
    public Path writableLayer(SandboxPaths paths) {
        return containerDir(paths.dir()).resolve("upper");
    }

    @Override
    public Path log(SandboxPaths paths) {
        return containerDir(paths.dir()).resolve("container.log");
    }

    @Override
    public ResourceUse usage(Sandbox s, SandboxPaths paths) {
        long memory = 0;
        double cpu = 0;
        OciContainers oci = containers();
        if (oci != null && running(s, paths)) {
            ContainerCgroup cg = oci.cgroupFor(containerId(s));
            memory = cg.memoryUsage().orElse(0);
            cpu = cg.cpuNanos().orElse(0) / 1e9;
        }
        return new ResourceUse(memory, 0, cpu, treeBytes(writableLayer(paths)));
    }

    /** The space the files of a directory tree take (what the sandbox wrote to its upper layer). */
    private static long treeBytes(Path root) {
        if (!Files.isDirectory(root)) {
            return 0;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(Files::isRegularFile)
                    .mapToLong(p -> {
                        try {
                            return Files.size(p);
                        } catch (IOException e) {
                            return 0;
                        }
                    })
                    .sum();
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    /** The container of a sandbox as the driver names it, whether or not the runtime still has it. */
    private Container container(OciContainers oci, Sandbox s, SandboxPaths paths) {
        String id = containerId(s);
        return new Container(
                id,
                containerDir(paths.dir()),
                Path.of(s.imageFile()),
                paths.runtimeDir().resolve(OciConfig.AGENT_SOCKET),
                oci.cgroupFor(id));
    }

    /** A container template's upper directory, copied with its overlay whiteouts and xattrs. */
    private static void copyUpper(Path template, Path upper) {
        if (!Files.isDirectory(template)) {
            throw SandboxException.failed("the workspace template " + template + " is not a container layer");
        }
        AirlockDirs.ensureOwnerOnlyDir(upper.resolveSibling("."));
        HostCommand.Result cp = HostCommand.run(
                List.of("cp", "-a", "--reflink=auto", template.toString(), upper.toString()), null, null);
        if (!cp.ok()) {
            throw SandboxException.failed("cannot copy the workspace template " + template + ": "
                    + cp.output().strip());
        }
    }
}
