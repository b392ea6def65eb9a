package dev.airlock.oci;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * One sandbox as a container.
 *
 * @param id the runtime's container id, also the cgroup's name: letters, digits, '-', '_', '.'
 * @param image the read-only root filesystem: an erofs image file (mounted once per image and
 *     shared) or an already mounted directory
 * @param sandboxDir the sandbox's own directory: bundle, overlay upper/work, logs
 * @param socketDir host directory bind-mounted at {@link OciConfig#AGENT_DIR} where the agent
 *     creates its socket; a unix socket path may not exceed 107 bytes, so this is usually a short
 *     runtime directory rather than a subdirectory of a deep sandbox directory
 * @param agent the static airlock-init binary, bind-mounted read-only into the container
 * @param hostname the container's UTS hostname
 * @param cpus CPU bandwidth in CPUs (quota / period), e.g. 1.5
 * @param memoryMiB memory limit (RAM plus tmpfs pages, which are charged to the cgroup)
 * @param pids the most tasks (processes and threads) the container may hold at once
 * @param env environment of the agent process (PID 1); the agent builds each command's
 *     environment itself (PATH, HOME, USER, ... plus the ExecSpec's variables)
 * @param network {@link Network.None} (only lo) or {@link Network.Nat} (slirp4netns)
 * @param agentCapabilities capabilities (OCI names) the agent holds beyond the usual set, which it
 *     drops from every command it runs (told so in its environment): only where the kernel
 *     the container sees is not the host's, i.e. under gVisor
 * @param ids the host ids of the container's user namespace ({@link ContainerIds}); null: no
 *     user namespace, container root is host root (gVisor, whose own kernel is the boundary, and
 *     sandboxes made before containers had one)
 * @param joined namespaces the container joins instead of making its own: runtime-spec type ->
 *     path of a namespace file, checked by the service ({@link dev.airlock.host.NamespaceFile});
 *     a joined network namespace replaces {@code network}'s
 */
public record ContainerSpec(
        String id,
        Path image,
        Path sandboxDir,
        Path socketDir,
        Path agent,
        String hostname,
        double cpus,
        int memoryMiB,
        int pids,
        Map<String, String> env,
        Network network,
        List<String> agentCapabilities,
        @Nullable ContainerIds ids,
        Map<String, String> joined) {

    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    private static final Pattern HOSTNAME = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?");

    /** How the container reaches the network. */
    public sealed interface Network {
        /** A private network namespace with only the loopback interface. */
        record None() implements Network {}

        /**
         * A private network namespace whose tap0 slirp4netns on the host connects to user-mode NAT
         * (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3). slirp4netns opens the outbound sockets,
         * so it runs in the cgroup whose {@code cgroup.procs} this is, where the host firewall
         * recognises them.
         */
        record Nat(java.nio.file.Path cgroupProcs) implements Network {}

        /**
         * The same user-mode NAT, set up before the container starts (runsc takes its interfaces
         * when it starts): the container joins the network namespace bound to {@code netns}, in
         * which slirp4netns already runs ({@link Slirp4netns#startInNewNamespace}).
         */
        record NatNamespace(java.nio.file.Path netns) implements Network {}
    }

    public ContainerSpec {
        if (!ID.matcher(id).matches()) {
            throw new IllegalArgumentException("container id must match " + ID + ": '" + id + "'");
        }
        if (!HOSTNAME.matcher(hostname).matches()) {
            throw new IllegalArgumentException("invalid hostname: '" + hostname + "'");
        }
        if (!(cpus > 0) || cpus > 1024) {
            throw new IllegalArgumentException("cpus must be positive: " + cpus);
        }
        if (memoryMiB < 16) {
            throw new IllegalArgumentException("memory must be at least 16 MiB: " + memoryMiB);
        }
        if (pids < 8) {
            throw new IllegalArgumentException("pids must be at least 8: " + pids);
        }
        image = image.toAbsolutePath();
        sandboxDir = sandboxDir.toAbsolutePath();
        socketDir = socketDir.toAbsolutePath();
        agent = agent.toAbsolutePath();
        if (socketDir.resolve(OciConfig.AGENT_SOCKET).toString().length() > 107) {
            throw new IllegalArgumentException("socket path too long for a unix socket: " + socketDir);
        }
        env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
        agentCapabilities = List.copyOf(agentCapabilities);
        joined = Map.copyOf(joined);
        env.forEach((k, v) -> {
            if (k.isEmpty() || k.indexOf('=') >= 0 || (k + v).indexOf('\0') >= 0) {
                throw new IllegalArgumentException("invalid environment variable: '" + k + "'");
            }
        });
    }

    /** Defaults: 1 CPU, 512 MiB, 512 tasks, no network, hostname = id (cut to a valid name). */
    public static Builder builder(String id, Path image, Path sandboxDir, Path agent) {
        return new Builder(id, image, sandboxDir, agent);
    }

    /** The host path of the agent's socket. */
    public Path socket() {
        return socketDir.resolve(OciConfig.AGENT_SOCKET);
    }

    public static final class Builder {
        private final String id;
        private final Path image;
        private final Path sandboxDir;
        private final Path agent;
        private Path socketDir;
        private String hostname;
        private double cpus = 1;
        private int memoryMiB = 512;
        private int pids = 512;
        private final Map<String, String> env = new LinkedHashMap<>();
        private Network network = new Network.None();
        private List<String> agentCapabilities = List.of();
        private @Nullable ContainerIds ids;
        private Map<String, String> joined = Map.of();

        private Builder(String id, Path image, Path sandboxDir, Path agent) {
            this.id = id;
            this.image = image;
            this.sandboxDir = sandboxDir;
            this.agent = agent;
            this.socketDir = sandboxDir.resolve("sock");
            String h = id.replaceAll("[^A-Za-z0-9-]", "-");
            this.hostname = h.length() > 63 ? h.substring(0, 63) : h;
        }

        public Builder socketDir(Path dir) {
            this.socketDir = dir;
            return this;
        }

        public Builder hostname(String name) {
            this.hostname = name;
            return this;
        }

        public Builder cpus(double cpus) {
            this.cpus = cpus;
            return this;
        }

        public Builder memoryMiB(int mib) {
            this.memoryMiB = mib;
            return this;
        }

        public Builder pids(int max) {
            this.pids = max;
            return this;
        }

        public Builder env(String name, String value) {
            env.put(name, value);
            return this;
        }

        public Builder network(Network n) {
            this.network = n;
            return this;
        }

        public Builder agentCapabilities(List<String> caps) {
            this.agentCapabilities = caps;
            return this;
        }

        public Builder ids(@Nullable ContainerIds ids) {
            this.ids = ids;
            return this;
        }

        public Builder joined(Map<String, String> namespaces) {
            this.joined = namespaces;
            return this;
        }

        public ContainerSpec build() {
            return new ContainerSpec(
                    id,
                    image,
                    sandboxDir,
                    socketDir,
                    agent,
                    hostname,
                    cpus,
                    memoryMiB,
                    pids,
                    env,
                    network,
                    agentCapabilities,
                    ids,
                    joined);
        }
    }
}
