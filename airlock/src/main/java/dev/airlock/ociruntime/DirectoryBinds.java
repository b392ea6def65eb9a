package dev.airlock.ociruntime;

import dev.airlock.host.HostCommand;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Directory binds ({@code podman -v DIR:/path[:ro]}) of a microVM-mode container: each host
 * directory is bind-mounted onto its destination inside the bundle's rootfs on the host, before
 * the VM boots, so it reaches the guest through the rootfs's own 9p share, as runc's bind would
 * appear in its container. A read-only bind is remounted read-only on the host, so the guest's
 * writes fail there whatever the guest does. The mounts are recorded in the container's state
 * directory and undone by {@code delete} (and by a failed create).
 *
 * <p>The destination is resolved inside the rootfs component by component without following a
 * symlink (an image could point {@code /data} at the host's {@code /etc}): a symlink on the way
 * is refused; missing directories are made.
 */
final class DirectoryBinds {
    /** In a container's state directory: one mount point per line, in the order mounted. */
    static final String FILE = "binds";

    /** Flags of a bind that the host mount applies (the guest cannot undo them). */
    static final List<String> FLAGS = List.of("ro", "nosuid", "nodev", "noexec");

    /** One bind: a host directory, its destination in the container, its {@link #FLAGS}. */
    record Bind(Path source, String destination, List<String> flags) {
        Bind {
            flags = List.copyOf(flags);
        }
    }

    private DirectoryBinds() {}

    /** Mounts every bind into {@code rootfs}, recording each in {@code stateDir} as it goes. */
    static void mount(Path rootfs, List<Bind> binds, Path stateDir) {
        for (Bind b : binds) {
            if (!Files.isDirectory(b.source())) {
                throw new RuntimeError("bind mount " + b.source() + ":" + b.destination() + ": the host path "
                        + b.source() + " does not exist or is not a directory");
            }
            Path target = inside(rootfs, b.destination());
            record(stateDir, target);
            HostCommand.check(List.of("mount", "--bind", b.source().toString(), target.toString()));
            if (!b.flags().isEmpty()) {
                // a bind takes its flags only on a remount
                HostCommand.check(
                        List.of("mount", "-o", "remount,bind," + String.join(",", b.flags()), target.toString()));
            }
        }
    }

    /** Unmounts what {@link #mount} recorded in {@code stateDir}, last first. */
    static void unmount(Path stateDir) {
        List<String> targets;
        try {
            targets = new ArrayList<>(Files.readAllLines(stateDir.resolve(FILE)));
        } catch (NoSuchFileException e) {
            return;
        } catch (IOException e) {
            throw new RuntimeError("cannot read the binds of " + stateDir + ": " + e.getMessage(), e);
        }
        for (String t : targets.reversed()) {
            if (t.isBlank() || !mounted(t)) {
                continue;
            }
            HostCommand.Result r = HostCommand.run(List.of("umount", t), null, null);
            if (!r.ok()) {
                // busy (a process of the host has it open): detach it now, it goes when released
                HostCommand.check(List.of("umount", "-l", t));
            }
        }
    }

    /** Whether something is mounted at {@code target} (in doubt: yes, so it is unmounted). */
    static boolean mounted(String target) {
        try {
            return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .anyMatch(l -> l.split(" ")[4].equals(target));
        } catch (IOException e) {
            return true;
        }
    }

    private static void record(Path stateDir, Path target) {
        try {
            Files.writeString(
                    stateDir.resolve(FILE),
                    target + "\n",
                    java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new RuntimeError("cannot record the bind " + target + ": " + e.getMessage(), e);
        }
    }

    /** {@code destination} under {@code rootfs}, made as directories, never through a symlink. */
    static Path inside(Path rootfs, String destination) {
        Path at = rootfs;
        for (String part : destination.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                throw new RuntimeError("bind destination " + destination + " has a '..' component");
            }
            at = at.resolve(part);
            if (Files.isSymbolicLink(at)) {
                throw new RuntimeError("bind destination " + destination + ": " + rootfs.relativize(at)
                        + " is a symlink in the container's rootfs; give the path it points to");
            }
            if (!Files.exists(at, LinkOption.NOFOLLOW_LINKS)) {
                try {
                    Files.createDirectory(at);
                } catch (IOException e) {
                    throw new RuntimeError(
                            "cannot make the bind destination " + destination + ": " + e.getMessage(), e);
                }
            } else if (!Files.isDirectory(at, LinkOption.NOFOLLOW_LINKS)) {
                throw new RuntimeError("bind destination " + destination + ": " + rootfs.relativize(at)
                        + " is not a directory in the container's rootfs");
            }
        }
        if (at.equals(rootfs)) {
            throw new RuntimeError("a bind onto / replaces the container's root; give another destination");
        }
        return at;
    }
}
