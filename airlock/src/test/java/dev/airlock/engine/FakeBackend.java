package dev.airlock.engine;

import dev.airlock.backend.Backend;
import dev.airlock.backend.Boundary;
import dev.airlock.backend.Capability;
import dev.airlock.backend.CloneResult;
import dev.airlock.backend.HostFit;
import dev.airlock.backend.Launch;
import dev.airlock.backend.ResourceUse;
import dev.airlock.backend.SandboxPaths;
import dev.airlock.guest.AgentEndpoint;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessExit;
import dev.airlock.sandbox.Sandbox;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * A FAKE backend, for the engine's own tests: it runs the real agent as a plain host process
 * (no isolation whatsoever), so the engine's lifecycle rules run against real sessions in
 * milliseconds instead of VM boots. "Pausing" ends the process and "resuming" starts a new one;
 * that is all the engine can see of a backend anyway.
 */
final class FakeBackend implements Backend {
    private final String name;
    private final Set<Capability> capabilities;
    private final @Nullable String unavailable;
    private final Boundary boundary;
    private volatile @Nullable Runnable beforeRunning;

    FakeBackend(String name, Set<Capability> capabilities, @Nullable String unavailable) {
        this(name, capabilities, unavailable, Boundary.NAMESPACES);
    }

    /** {@code boundary}: what the stand-in claims to isolate with, for the default-runtime rule. */
    FakeBackend(String name, Set<Capability> capabilities, @Nullable String unavailable, Boundary boundary) {
        this.name = name;
        this.capabilities = capabilities.isEmpty() ? EnumSet.noneOf(Capability.class) : EnumSet.copyOf(capabilities);
        this.unavailable = unavailable;
        this.boundary = boundary;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String isolation(Sandbox s) {
        return "none (a test stand-in: the agent runs as a plain host process)";
    }

    @Override
    public Set<Capability> capabilities() {
        return capabilities;
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.ofNullable(unavailable);
    }

    @Override
    public HostFit hostFit() {
        return new HostFit(boundary, unavailable, 1, "nothing (a stand-in)", "fake");
    }

    @Override
    public void prepare(Sandbox s, SandboxPaths paths, @Nullable Path layerTemplate) {
        AirlockDirs.ensureDir(writableLayer(paths));
    }

    @Override
    public Launch start(Sandbox s, SandboxPaths paths) {
        return new Launch(launch(paths), "fake", false);
    }

    private long launch(SandboxPaths paths) {
        try {
            AirlockDirs.ensureDir(paths.runtimeDir());
            Path socket = paths.runtimeDir().resolve("agent.sock");
            Files.deleteIfExists(socket);
            Process p = new ProcessBuilder(agentBinary().toString(), "--serve-unix", socket.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log(paths).toFile()))
                    .start();
            HostFiles.writeAtomically(
                    paths.dir().resolve("fake.pid"), Long.toString(p.pid()).getBytes(StandardCharsets.UTF_8));
            // Like a VMM that returns once its sockets listen: wait until the agent accepts.
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (true) {
                try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                    probe.connect(UnixDomainSocketAddress.of(socket));
                    break;
                } catch (IOException e) {
                    if (!p.isAlive() || System.nanoTime() > deadline) {
                        p.destroyForcibly();
                        throw new IllegalStateException("the fake agent did not listen on " + socket, e);
                    }
                    Thread.yield();
                }
            }
            return p.pid();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the agent process", e);
        }
    }

    private static Path agentBinary() {
        URL url = GuestChannel.class.getResource("bin/airlock-init");
        if (url == null) {
            throw new IllegalStateException("airlock-init is not on the class path; build with ./mvnw verify");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Optional<ProcessHandle> process(SandboxPaths paths) {
        try {
            long pid = Long.parseLong(
                    Files.readString(paths.dir().resolve("fake.pid")).strip());
            return ProcessHandle.of(pid).filter(ProcessHandle::isAlive).filter(h -> !ProcessExit.hasExited(h.pid()));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** Ends the agent behind the engine's back, as a crashed VMM would. */
    void crash(SandboxPaths paths) {
        kill(null, paths);
    }

    /**
     * Runs {@code step} inside the next {@link #running} call, before it looks: puts another
     * operation between a caller's read of a record and its check of the process, a race that
     * otherwise needs luck to hit.
     */
    void beforeNextRunningCheck(Runnable step) {
        this.beforeRunning = step;
    }

    @Override
    public boolean running(@Nullable Sandbox s, SandboxPaths paths) {
        Runnable step = beforeRunning;
        if (step != null) {
            beforeRunning = null;
            step.run();
        }
        return process(paths).isPresent();
    }

    @Override
    public void kill(@Nullable Sandbox s, SandboxPaths paths) {
        process(paths).ifPresent(p -> {
            p.destroyForcibly();
            ProcessExit.await(p.pid(), Duration.ofSeconds(10));
        });
    }

    /** The fake's "guest" powers off as soon as it is asked (a host process has nothing to flush). */
    @Override
    public void awaitStop(Sandbox s, SandboxPaths paths, Duration grace) {
        kill(s, paths);
    }

    @Override
    public void release(Sandbox s, SandboxPaths paths) {}

    @Override
    public AgentEndpoint agent(Sandbox s, SandboxPaths paths) {
        return new AgentEndpoint.UnixSocket(paths.runtimeDir().resolve("agent.sock"));
    }

    @Override
    public Path writableLayer(SandboxPaths paths) {
        return paths.dir().resolve("layer");
    }

    @Override
    public Path log(SandboxPaths paths) {
        return paths.dir().resolve("agent.log");
    }

    @Override
    public ResourceUse usage(Sandbox s, SandboxPaths paths) {
        return ResourceUse.NONE;
    }

    @Override
    public void pause(Sandbox s, SandboxPaths paths, Runnable recordPaused) {
        recordPaused.run();
        kill(s, paths);
    }

    @Override
    public Launch resume(Sandbox s, SandboxPaths paths) {
        long pid = launch(paths);
        awaitAgent(s, paths);
        return new Launch(pid, "resumed", true);
    }

    @Override
    public List<CloneResult> fork(Sandbox source, SandboxPaths sourcePaths, List<Clone> clones) {
        List<CloneResult> out = new ArrayList<>();
        for (Clone c : clones) {
            prepare(c.sandbox(), c.paths(), null);
            long pid = launch(c.paths());
            awaitAgent(c.sandbox(), c.paths());
            out.add(CloneResult.launched(new Launch(pid, "fork of " + source.name(), true)));
        }
        return out;
    }

    private void awaitAgent(Sandbox s, SandboxPaths paths) {
        try (GuestChannel ignored = GuestChannel.connect(agent(s, paths), Duration.ofSeconds(10))) {
            // answered
        } catch (IOException e) {
            throw new IllegalStateException("the fake agent did not answer", e);
        }
    }
}
