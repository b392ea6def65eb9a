package dev.airlock.host;

import java.time.Duration;

/**
 * Waits for a process that is not our child (a daemonized QEMU, the daemon) to exit. The JDK's
 * {@link ProcessHandle#onExit()} can only poll such a process, and does so with long pauses
 * (measured: 1.8 s after a SIGKILL that took effect at once); a pidfd reports the exit itself.
 */
public final class ProcessExit {
    private ProcessExit() {}

    /**
     * True if {@code pid} is gone or a zombie. The JDK counts a zombie as alive, and a daemonized
     * process's zombie lasts until the host's init reaps it (tens of ms under some inits).
     */
    public static boolean hasExited(long pid) {
        try {
            String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc", Long.toString(pid), "stat"));
            int end = stat.lastIndexOf(") ");
            return end < 0 || stat.charAt(end + 2) == 'Z' || stat.charAt(end + 2) == 'X';
        } catch (java.io.IOException e) {
            return true;
        }
    }

    /** True once {@code pid} has exited (or was already gone), false if it still runs after {@code timeout}. */
    public static boolean await(long pid, Duration timeout) {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int fd = sys.pidfdOpen(pid);
            if (fd < 0) {
                return true;
            }
            try {
                long deadline = System.nanoTime() + timeout.toNanos();
                while (true) {
                    long left = Math.max(0, (deadline - System.nanoTime()) / 1_000_000);
                    if (sys.pollIn(fd, (int) Math.min(left, Integer.MAX_VALUE))) {
                        return true;
                    }
                    if (System.nanoTime() >= deadline) {
                        return false;
                    }
                }
            } finally {
                sys.close(fd);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            // No pidfds (a kernel before 5.3): fall back to the JDK's polling.
            return ProcessHandle.of(pid)
                    .map(p -> p.onExit()
                            .completeOnTimeout(p, timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
                            .join())
                    .map(p -> !p.isAlive())
                    .orElse(true);
        }
    }
}
