package dev.airlock.container;

import dev.airlock.backend.Backend;
import dev.airlock.backend.Boundary;
import dev.airlock.backend.Capability;
import dev.airlock.backend.HostFit;
import dev.airlock.backend.Launch;
import dev.airlock.backend.ResourceUse;
import dev.airlock.backend.SandboxPaths;
import dev.airlock.guest.AgentEndpoint;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import dev.airlock.host.NatCgroup;
import dev.airlock.image.GuestAgent;
import dev.airlock.oci.Container;
import dev.airlock.oci.ContainerIds;
import dev.airlock.oci.ContainerSpec;
import dev.airlock.oci.ImageMounts;
import dev.airlock.oci.OciContainers;
import dev.airlock.oci.OciRuntime;
import dev.airlock.oci.OciSandboxes;
import dev.airlock.sandbox.Names;
import dev.airlock.sandbox.Sandbox;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.json.JsonMapper;

/**
 * Sandboxes as OCI containers (crun or runc): the image is mounted once, read-only, and joined
 * with the sandbox's own upper directory by overlayfs; the agent runs as the container's PID 1
 * on a unix socket. See docs/container-mode.md for the isolation and the cgroup layout. The
 * bundle machinery is {@link OciSandboxes}, shared with the gVisor backend; the OCI runtime is
 * looked up on first use, so a host without one still runs the other backends.
 */
public final class ContainerBackend implements Backend {
    public static final String NAME = "container";

    private final AirlockDirs dirs;
    private final Duration startLimit;
    private final OciSandboxes oci;

    public ContainerBackend(AirlockDirs dirs, Duration startLimit) {
        this.dirs = dirs;
        this.startLimit = startLimit;
        this.oci = new OciSandboxes(
                NAME,
                () -> new OciContainers(
                        OciRuntime.detect(dirs.runtime().resolve("oci")),
                        new ImageMounts(dirs.cache().resolve("mounts"))));
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
        return EnumSet.of(Capability.NAT, Capability.JOIN_NAMESPACES);
    }

    @Override
    public Optional<String> unavailableReason() {
        return oci.unavailableReason();
    }

    @Override
    public HostFit hostFit() {
        Optional<String> why = oci.unavailableReason();
        OciContainers c = oci.containers();
        if (why.isPresent() || c == null) {
            return new HostFit(Boundary.NAMESPACES, why.orElse("no OCI runtime"), -1, "", "crun or runc");
        }
        String runtime = c.runtime().binary().getFileName().toString();
        return new HostFit(
                Boundary.NAMESPACES,
                null,
                startMillis(c),
                runtime + " run until the agent answers",
                runtime + " (" + c.runtime().binary() + "), shared host kernel");
    }

    /**
     * How long the OCI runtime takes to start a container until its agent answers, measured once
     * per runtime binary and cached: the sandbox's config and overlay on an empty root (the
     * agent is static); -1 when it failed.
     */
    private long startMillis(OciContainers c) {
        JsonMapper json = JsonMapper.builder().build();
        Path binary = c.runtime().binary();
        String fp;
        try {
            fp = Hashing.sha256(binary.toRealPath() + " " + Files.size(binary.toRealPath()))
                    .substring(0, 16);
        } catch (IOException e) {
            fp = Hashing.sha256(binary.toString()).substring(0, 16);
        }
        Path cacheFile = dirs.cache().resolve("container-start-" + fp + ".json");
        if (Files.isRegularFile(cacheFile)) {
            try {
                return json.readTree(cacheFile.toFile()).path("millis").asLong(-1);
            } catch (RuntimeException e) {
                // measure again
            }
        }
        String id = Names.newId().substring(0, 8);
        Path work = AirlockDirs.ensureDir(dirs.data().resolve("start-check-" + id));
        Path sockets = dirs.runtime().resolve("start-check-" + id);
        long millis = -1;
        ContainerSpec spec = ContainerSpec.builder(
                        "airlock-start-" + id,
                        AirlockDirs.ensureDir(work.resolve("root")),
                        work.resolve("container"),
                        GuestAgent.bundled(dirs).binary())
                .socketDir(sockets)
                .ids(ContainerIds.forHost().orElse(null))
                .build();
        Container started = null;
        try {
            long t0 = System.nanoTime();
            started = c.create(spec, Duration.ofSeconds(30));
            millis = (System.nanoTime() - t0) / 1_000_000;
            HostFiles.writeAtomically(cacheFile, json.writeValueAsBytes(Map.of("millis", millis)));
        } catch (RuntimeException e) {
            // not measured: the fit shows -1
        } finally {
            if (started != null) {
                c.remove(started);
            }
            HostFiles.deleteTree(work);
            HostFiles.deleteTree(sockets);
        }
        return millis;
    }

    @Override
    public void releaseImage(Path imageFile) {
        oci.releaseImage(imageFile);
    }

    @Override
    public void prepare(Sandbox s, SandboxPaths paths, @Nullable Path layerTemplate) {
        // A new sandbox gets the host's container ids (setup reserves them); without them it runs
        // as before, container root being host root, and `airlock doctor` says so. So does a
        // root the kernel cannot show idmapped (an OCI bundle's rootfs on podman's overlay).
        oci.prepare(
                paths,
                layerTemplate,
                s.resources().diskMiB(),
                ContainerIds.forHost()
                        .filter(ids -> ImageMounts.canIdmap(Path.of(s.imageFile())))
                        .orElse(null));
    }

    @Override
    public Launch start(Sandbox s, SandboxPaths paths) {
        ContainerSpec spec = OciSandboxes.spec(
                        s, paths, GuestAgent.bundled(dirs).binary())
                .network(
                        s.nat()
                                ? new ContainerSpec.Network.Nat(
                                        NatCgroup.of(dirs, s.id()).procs())
                                : new ContainerSpec.Network.None())
                .ids(OciSandboxes.ids(paths))
                .joined(s.namespaces())
                .build();
        return oci.start(s, paths, spec, startLimit, "container");
    }

    @Override
    public boolean running(Sandbox s, SandboxPaths paths) {
        return oci.running(s, paths);
    }

    @Override
    public void kill(Sandbox s, SandboxPaths paths) {
        oci.kill(s, paths);
    }

    @Override
    public void awaitStop(Sandbox s, SandboxPaths paths, Duration grace) {
        oci.awaitStop(s, paths, grace);
    }

    @Override
    public void release(Sandbox s, SandboxPaths paths) {
        oci.release(s, paths);
    }

    @Override
    public void releaseForRemoval(Sandbox s, SandboxPaths paths) {
        oci.releaseForRemoval(s, paths);
    }

    @Override
    public AgentEndpoint agent(Sandbox s, SandboxPaths paths) {
        return oci.agent(paths);
    }

    @Override
    public Path writableLayer(SandboxPaths paths) {
        return oci.writableLayer(paths);
    }

    @Override
    public Path log(SandboxPaths paths) {
        return oci.log(paths);
    }

    @Override
    public ResourceUse usage(Sandbox s, SandboxPaths paths) {
        return oci.usage(s, paths);
    }
}
