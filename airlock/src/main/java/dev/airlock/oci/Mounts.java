package dev.airlock.oci;

import dev.airlock.host.LinuxSyscalls;
import dev.airlock.host.LoopMount;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** The host's mount table (this process's mount namespace) and the mounts we make, by system call. */
final class Mounts {
    /** One line of /proc/self/mountinfo. */
    record Entry(Path mountPoint, String type, String source, String superOptions) {}

    private Mounts() {}

    static List<Entry> list() {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/mountinfo"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Entry> out = new ArrayList<>();
        for (String line : lines) {
            String[] f = line.split(" ");
            int dash = List.of(f).indexOf("-");
            if (dash < 0 || f.length < dash + 4) {
                continue;
            }
            out.add(new Entry(Path.of(unescape(f[4])), f[dash + 1], unescape(f[dash + 2]), f[dash + 3]));
        }
        return out;
    }

    static boolean isMountPoint(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        return list().stream().anyMatch(e -> e.mountPoint().equals(abs));
    }

    /** Mount points at or below {@code dir}. */
    static List<Path> under(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        return list().stream()
                .map(Entry::mountPoint)
                .filter(p -> p.startsWith(abs))
                .toList();
    }

    /**
     * A filesystem image file mounted on {@code target} through a loop device, by system calls
     * ({@link LoopMount}: no fork of mount(8) on a sandbox's start).
     */
    static void mountLoop(String type, Path file, Path target, long flags) {
        try {
            LoopMount.mount(file, target, type, flags);
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new ContainerException("cannot mount " + file + " on " + target + ": " + e.detail());
        }
    }

    /** An overlay mount by syscall: it is on every container start, where a fork of mount(8) costs. */
    static void mountOverlay(Path target, String options) {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            sys.mount("overlay", target.toString(), "overlay", 0, options);
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new ContainerException(e.detail() + " with " + options);
        }
    }

    /**
     * The host directory a sandbox's agent makes its socket in, which the sandbox sees read-write
     * at {@link OciConfig#AGENT_DIR}: a fresh tmpfs of a few pages and inodes, so whatever the
     * sandbox writes there counts against that and never against the host's own file system (its
     * runtime directory's disk, or memory when that is tmpfs). What an earlier run left there,
     * mounted or not, is gone; nothing of it is read.
     */
    static void mountSocketDir(Path dir) {
        unmount(dir);
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            sys.mount(
                    "airlock-sockets",
                    dir.toString(),
                    "tmpfs",
                    LoopMount.MS_NOSUID | LoopMount.MS_NODEV | LoopMount.MS_NOEXEC,
                    "size=64k,nr_inodes=16,mode=0755");
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new ContainerException("cannot mount the agent's socket directory " + dir + ": " + e.detail());
        }
    }

    /**
     * How long an unmount waits for a mount's last holders to let go: a runtime's helper that is
     * still exiting (runsc's gofer holds a sandbox's root until it is gone) makes it busy for a
     * few milliseconds after the container is reported ended.
     */
    static final Duration HOLDERS_EXIT = Duration.ofSeconds(2);

    private static final int EBUSY = 16;

    /**
     * Unmounts if mounted, waiting up to {@code wait} while the mount is busy; false if it is
     * still busy then, and stays mounted.
     */
    static boolean unmountWhenFree(Path target, Duration wait) {
        if (!isMountPoint(target)) {
            return true;
        }
        long deadline = System.nanoTime() + wait.toNanos();
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            while (true) {
                try {
                    sys.umount2(target.toString(), 0);
                    return true;
                } catch (LinuxSyscalls.ErrnoException e) {
                    if (!isMountPoint(target)) {
                        return true;
                    }
                    if (e.errno() != EBUSY) {
                        throw new ContainerException("cannot unmount " + target + ": " + e.detail());
                    }
                }
                if (System.nanoTime() >= deadline) {
                    return false;
                }
                try {
                    // the kernel gives no event for a mount's last holder going
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
        }
    }

    /**
     * Unmounts if mounted; a mount still busy after {@link #HOLDERS_EXIT} is detached lazily
     * rather than left behind: only for what is being deleted or never mounted again as it is (a
     * container's root view), never for a sandbox disk that a later start mounts anew.
     */
    static void unmount(Path target) {
        if (unmountWhenFree(target, HOLDERS_EXIT)) {
            return;
        }
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            sys.umount2(target.toString(), LinuxSyscalls.MNT_DETACH);
        } catch (LinuxSyscalls.ErrnoException e) {
            if (isMountPoint(target)) {
                throw new ContainerException("cannot unmount " + target + ": " + e.detail());
            }
        }
    }

    /** mountinfo escapes space, tab, newline and backslash as octal. */
    private static String unescape(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
