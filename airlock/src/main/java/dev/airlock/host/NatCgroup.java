package dev.airlock.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The cgroup2 group that the host process of one {@code --network nat} sandbox runs in (its
 * QEMU, or the slirp4netns of its container). That process opens every outbound socket of the
 * sandbox's user-mode NAT, so the host firewall tells those sockets apart from everything
 * else on the host by this group ({@code iptables -m cgroup --path}).
 *
 * <p>Layout below the cgroup2 root: {@code airlock-nat/<data dir hash>/<sandbox id>}, so each
 * daemon sweeps only what its own data directory left. Only membership is used: no controller
 * is enabled, so the group changes nothing about the process's resources.
 */
public final class NatCgroup {
    /** The group every nat sandbox is below; the firewall's catch-all rule names it. */
    public static final String TOP = "airlock-nat";

    private final Path root;
    private final String path;

    private NatCgroup(Path root, String path) {
        this.root = root;
        this.path = path;
    }

    /** The group of a sandbox of this data directory (not created yet). */
    public static NatCgroup of(AirlockDirs dirs, String sandboxId) {
        Path root = cgroup2Root()
                .orElseThrow(() -> new UncheckedIOException(
                        "--network nat needs a cgroup2 hierarchy on the host and none is mounted (mount one,"
                                + " e.g.: mount -t cgroup2 none /sys/fs/cgroup/unified)",
                        new IOException("no cgroup2 in /proc/self/mounts")));
        return new NatCgroup(root, dataGroup(dirs) + "/" + shortId(sandboxId));
    }

    /** The groups this data directory's sandboxes left, by sandbox id prefix. */
    public static List<String> leftIds(AirlockDirs dirs) {
        Optional<Path> root = cgroup2Root();
        if (root.isEmpty()) {
            return List.of();
        }
        Path dir = root.get().resolve(dataGroup(dirs));
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        try (Stream<Path> groups = Files.list(dir)) {
            groups.filter(Files::isDirectory)
                    .forEach(g -> out.add(g.getFileName().toString()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        return out;
    }

    /** The 16-character id prefix groups and firewall chains are named by. */
    public static String shortId(String sandboxId) {
        return sandboxId.substring(0, Math.min(16, sandboxId.length()));
    }

    private static String dataGroup(AirlockDirs dirs) {
        return TOP + "/"
                + Hashing.sha256(dirs.data().toAbsolutePath().toString()).substring(0, 12);
    }

    /** The path iptables names it by, relative to the cgroup2 root. */
    public String path() {
        return path;
    }

    /**
     * Creates the group (and its parents) if needed and returns its {@code cgroup.procs}: a
     * process that writes its pid there before it execs the NAT belongs to it from its first
     * socket on.
     */
    public Path procs() {
        Path dir = root.resolve(path);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the cgroup " + dir + " for the sandbox's network", e);
        }
        return dir.resolve("cgroup.procs");
    }

    public boolean exists() {
        return Files.isDirectory(root.resolve(path));
    }

    /**
     * Removes the group once no process is left in it, and its data directory's group once that
     * is empty too; a group still in use stays.
     */
    public void remove() {
        Path dir = root.resolve(path);
        try {
            Files.deleteIfExists(dir);
            Files.deleteIfExists(dir.getParent());
        } catch (IOException e) {
            // still has a process (the sandbox's NAT has not exited yet), or another sandbox of
            // this data directory still has its group: the next sweep removes what is left
        }
    }

    /** Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on a unified host, .../unified on a hybrid one. */
    public static Optional<Path> cgroup2Root() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mounts"), StandardCharsets.UTF_8)) {
                String[] f = line.split(" ");
                if (f.length > 2 && f[2].equals("cgroup2")) {
                    return Optional.of(Path.of(f[1]));
                }
            }
        } catch (IOException e) {
            // no /proc: no cgroups either
        }
        return Optional.empty();
    }
}
