package dev.airlock.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The cgroup2 group a jailed VMM without a NIC runs in ({@code airlock-vmm/<vm>} below the
 * cgroup2 root), so each VMM is one group the host can account, find and kill as a whole, and the
 * VMM's cgroup namespace shows it nothing above its own group. A VMM with a NIC runs in its
 * {@link NatCgroup} instead, where the NAT firewall recognises its sockets. Membership only: no
 * controller is enabled (on a hybrid host like the one Airlock is developed on, cgroup2 has none
 * to give); resource limits stay with QEMU's own -m/-smp.
 */
public final class VmmCgroup {
    public static final String TOP = "airlock-vmm";
    /** A group younger than this may belong to a VMM being launched right now: sweeps leave it. */
    private static final Duration SWEEP_AGE = Duration.ofMinutes(2);

    private VmmCgroup() {}

    /**
     * The group of the VM whose state directory is {@code stateDir} (the jail launcher creates
     * it), or empty on a host without cgroup2. Empty groups left by VMMs that exited are removed
     * on the way.
     */
    public static Optional<Path> groupFor(Path stateDir) {
        Optional<Path> root = NatCgroup.cgroup2Root();
        if (root.isEmpty()) {
            return Optional.empty();
        }
        Path top = root.get().resolve(TOP);
        try {
            Files.createDirectories(top);
        } catch (IOException e) {
            return Optional.empty();
        }
        sweep(top);
        return Optional.of(
                top.resolve(Hashing.sha256(stateDir.toAbsolutePath().toString()).substring(0, 16)));
    }

    private static void sweep(Path top) {
        if (!Files.isDirectory(top)) {
            return;
        }
        Instant before = Instant.now().minus(SWEEP_AGE);
        try (Stream<Path> groups = Files.list(top)) {
            groups.filter(Files::isDirectory).forEach(g -> {
                try {
                    if (Files.getLastModifiedTime(g).toInstant().isBefore(before)) {
                        Files.deleteIfExists(g);
                    }
                } catch (IOException e) {
                    // still has its VMM: stays
                }
            });
        } catch (IOException e) {
            // nothing to sweep
        }
    }
}
