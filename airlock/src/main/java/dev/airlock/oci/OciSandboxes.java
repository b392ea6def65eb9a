package dev.airlock.oci;

import dev.airlock.backend.Launch;
import dev.airlock.backend.ResourceUse;
import dev.airlock.backend.SandboxPaths;
import dev.airlock.guest.AgentEndpoint;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.DiskLayer;
import dev.airlock.host.HostCommand;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * Sandboxes as OCI containers of one runtime, the part every OCI backend shares: the container
 * backend (crun or runc) and the gVisor backend (runsc) differ in the runtime they drive and the
 * limits they write into config.json, not in how a sandbox's bundle, overlay, agent socket and
 * writable layer are laid out or found again. Each backend holds one of these and adds what only
 * it does; neither backend knows the other.
 *
 * <p>The runtime is looked up on first use ({@code find}), so a host without it still runs the
 * other backends, and {@link #unavailableReason} says why this one cannot.
 */
public final class OciSandboxes {
    private final String runtimeName;
    private final Supplier<OciContainers> find;
    private volatile @Nullable OciContainers containers;
    private volatile @Nullable String missing;

    /**
     * @param runtimeName the Airlock runtime, for messages ({@code container}, {@code gvisor})
     * @param find makes the driver; throws a {@link ContainerException} saying why it cannot
     */
    public OciSandboxes(String runtimeName, Supplier<OciContainers> find) {
        this.runtimeName = runtimeName;
        this.find = find;
    }

    /** Why the runtime cannot run here (looked up once), or empty. */
    public Optional<String> unavailableReason() {
        containers();
        return Optional.ofNullable(missing);
    }

    /** The driver, found on first use; null (with the reason kept) when there is none. */
    public @Nullable OciContainers containers() {
        OciContainers c = containers;
        if (c == null && missing == null) {
            synchronized (this) {
                if (containers == null && missing == null) {
                    try {
                        containers = find.get();
                    } catch (ContainerException e) {
                        missing = e.getMessage();
                    }
                }
                c = containers;
            }
        }
        return c;
    }

    public OciContainers require() {
        OciContainers c = containers();
        if (c == null) {
            throw SandboxException.unavailable("the " + runtimeName + " runtime cannot run here: " + missing);
        }
        return c;
    }

    /** Lets go of the shared mount of an image that is being removed. */
    public void releaseImage(Path imageFile) {
        OciContainers oci = containers();
        if (oci != null) {
            // A container mount of the image outlives its containers; it goes with the image.
            oci.images().release(imageFile);
        }
    }

    /** The runtime's id of a sandbox's container (also its cgroup's name). */
    public static String containerId(Sandbox s) {
        return containerId(s.id());
    }

    public static String containerId(String sandboxId) {
        return "airlock-" + sandboxId.substring(0, 16);
    }

    /** Where a sandbox's bundle, overlay layers and log live, inside its directory. */
    public static Path containerDir(Path sandboxDir) {
        return sandboxDir.resolve("container");
    }

    /**
     * A new sandbox's writable layer on a disk of its own of {@code diskMiB} (its disk limit):
     * empty, or a copy of a workspace template's or a fork's layer. Its container runs in a user
     * namespace of {@code ids} (recorded with the sandbox, so it keeps the ids its layer's files
     * belong to); null: none.
     */
    public void prepare(SandboxPaths paths, @Nullable Path layerTemplate, long diskMiB, @Nullable ContainerIds ids) {
        Path dir = containerDir(paths.dir());
        if (ids != null) {
            ids.record(dir);
        }
        if (!LayerDisk.present(dir)) {
            LayerDisk.make(dir, diskMiB, require().images().dir().resolveSibling("blank-disks"));
        }
        if (layerTemplate != null) {
            copyUpper(layerTemplate, writableLayer(paths));
        }
    }

    /** The user namespace ids a sandbox was created with; null: it runs without one. */
    public static @Nullable ContainerIds ids(SandboxPaths paths) {
        return ContainerIds.recorded(containerDir(paths.dir())).orElse(null);
    }

    /**
     * The spec of a sandbox's container with what every OCI backend gives it (image, directories,
     * agent, hostname, the sandbox's resources); the backend adjusts limits and network.
     */
    public static ContainerSpec.Builder spec(Sandbox s, SandboxPaths paths, Path agentBinary) {
        return ContainerSpec.builder(containerId(s), Path.of(s.imageFile()), containerDir(paths.dir()), agentBinary)
                .socketDir(paths.runtimeDir())
                .hostname(s.name())
                .cpus(s.resources().cpus())
                .memoryMiB(s.resources().memoryMiB())
                .pids(s.resources().pids());
    }

    /** Starts the container of {@code spec}, returning once its agent answers. */
    public Launch start(Sandbox s, SandboxPaths paths, ContainerSpec spec, Duration limit, String origin) {
        OciContainers oci = require();
        clearDead(oci, s, paths);
        return new Launch(oci.initPid(oci.create(spec, limit)), origin, true);
    }

    /**
     * A container that died without being deleted (a crashed host process, a killed init) still
     * holds its id and mounts: clear it first; its upper layer, the sandbox's data, stays.
     */
    public void clearDead(OciContainers oci, Sandbox s, SandboxPaths paths) {
        Container previous = container(oci, s, paths);
        if (oci.state(previous).isPresent()) {
            oci.destroy(previous);
        }
    }

    /**
     * Ends the container of a record-less sandbox directory (a warm pool's, left by a previous
     * process) and unmounts what it held, so the directory can be deleted.
     */
    public void destroyLeftover(String sandboxId, SandboxPaths paths) {
        OciContainers oci = containers();
        if (oci == null) {
            return;
        }
        String id = containerId(sandboxId);
        // Ending a container needs no image: the directory stands in for the one it is unknown.
        oci.destroy(new Container(
                id,
                containerDir(paths.dir()),
                paths.dir(),
                paths.runtimeDir().resolve(OciConfig.AGENT_SOCKET),
                oci.cgroupFor(id)));
        oci.unmountAllUnder(containerDir(paths.dir()));
    }

    public boolean running(Sandbox s, SandboxPaths paths) {
        OciContainers oci = containers();
        return oci != null
                && oci.state(container(oci, s, paths)).map(st -> st.running()).orElse(false);
    }

    public void kill(Sandbox s, SandboxPaths paths) {
        OciContainers oci = containers();
        if (oci != null) {
            oci.destroy(container(oci, s, paths));
        }
    }

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

    public void release(Sandbox s, SandboxPaths paths) {
        OciContainers oci = containers();
        if (oci != null && Files.isDirectory(containerDir(paths.dir()))) {
            oci.destroy(container(oci, s, paths));
            // what is still busy stays mounted for the next start (never a second mount of the disk)
            oci.releaseMountsUnder(containerDir(paths.dir()));
        }
    }

    /** {@link #release}, then whatever is still mounted below the sandbox goes, busy or not. */
    public void releaseForRemoval(Sandbox s, SandboxPaths paths) {
        release(s, paths);
        OciContainers oci = containers();
        if (oci != null) {
            oci.unmountAllUnder(containerDir(paths.dir()));
        }
    }

    public AgentEndpoint agent(SandboxPaths paths) {
        return new ContainerAgentSocket(paths.runtimeDir().resolve(OciConfig.AGENT_SOCKET));
    }

    /** The sandbox's upper directory, its disk mounted first if it has one (a stopped sandbox's is not). */
    public Path writableLayer(SandboxPaths paths) {
        Path dir = containerDir(paths.dir());
        LayerDisk.mount(dir);
        return LayerDisk.upper(dir);
    }

    public Path log(SandboxPaths paths) {
        return containerDir(paths.dir()).resolve("container.log");
    }

    /** Memory and CPU from the container's cgroup on the host, disk from its upper layer. */
    public ResourceUse usage(Sandbox s, SandboxPaths paths) {
        long memory = 0;
        double cpu = 0;
        OciContainers oci = containers();
        if (oci != null && running(s, paths)) {
            ContainerCgroup cg = oci.cgroupFor(containerId(s));
            memory = cg.memoryUsage().orElse(0);
            cpu = cg.cpuNanos().orElse(0) / 1e9;
        }
        Path dir = containerDir(paths.dir());
        // a stopped sandbox's disk is not mounted for this: its file's host blocks stand in
        long disk = LayerDisk.present(dir) && !LayerDisk.mounted(dir)
                ? DiskLayer.allocatedBytes(LayerDisk.file(dir))
                : treeBytes(LayerDisk.upper(dir));
        return new ResourceUse(memory, 0, cpu, disk);
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
    public Container container(OciContainers oci, Sandbox s, SandboxPaths paths) {
        String id = containerId(s);
        return new Container(
                id,
                containerDir(paths.dir()),
                Path.of(s.imageFile()),
                paths.runtimeDir().resolve(OciConfig.AGENT_SOCKET),
                oci.cgroupFor(id));
    }

    /** A container layer copied with its overlay whiteouts and xattrs (a template's, a fork's). */
    public static void copyUpper(Path template, Path upper) {
        if (!Files.isDirectory(template)) {
            throw SandboxException.failed("the layer " + template + " is not a container layer");
        }
        AirlockDirs.ensureOwnerOnlyDir(upper.resolveSibling("."));
        HostCommand.Result cp = HostCommand.run(
                List.of("cp", "-a", "--reflink=auto", template.toString(), upper.toString()), null, null);
        if (!cp.ok()) {
            throw SandboxException.failed(
                    "cannot copy the layer " + template + ": " + cp.output().strip());
        }
    }
}
