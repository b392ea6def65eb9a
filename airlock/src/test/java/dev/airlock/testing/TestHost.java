package dev.airlock.testing;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.setup.Setup;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * The real host as tests see it: the shared cache (kernel and images are built once, by setup,
 * and reused) with a private data and runtime directory per test class, so sandboxes made by one
 * test never meet another's.
 */
public final class TestHost {
    private static Setup.@Nullable Report report;

    private TestHost() {}

    /** Runs setup (a no-op when the host is ready) once per JVM and returns what it found. */
    public static synchronized Setup.Report ready() {
        if (report == null) {
            report = new Setup(AirlockDirs.fromEnvironment(), Progress.STDERR).ensure();
        }
        return report;
    }

    /**
     * Removes a test's private directories, first killing any process (VMM, daemon) still working
     * in them, so a failed test leaves nothing running behind.
     */
    public static void cleanUp(AirlockDirs dirs) {
        String data = dirs.data().toString();
        // The daemon the CLI started for this test: its data directory is in its environment, not
        // its command line, so find it by its pid file.
        try {
            long pid =
                    Long.parseLong(java.nio.file.Files.readString(dirs.runtime().resolve("airlockd.pid"))
                            .strip());
            ProcessHandle.of(pid).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        } catch (IOException | NumberFormatException e) {
            // No daemon was started.
        }
        ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().orElse("").contains(data)
                        || p.info()
                                .commandLine()
                                .orElse("")
                                .contains(dirs.runtime().toString()))
                .filter(p -> p.pid() != ProcessHandle.current().pid())
                .forEach(p -> {
                    p.destroyForcibly();
                    p.onExit().join();
                });
        // A container sandbox outlives the daemon that started it (as it must), and its init's
        // command line names no test directory: find it by the test's overlay in the mounts of
        // its own namespace.
        try (var procs = java.nio.file.Files.list(Path.of("/proc"))) {
            procs.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit))
                    .filter(p -> mountsUnder(p, data + "/"))
                    .map(p -> ProcessHandle.of(Long.parseLong(p.getFileName().toString())))
                    .flatMap(java.util.Optional::stream)
                    .filter(p -> p.pid() != ProcessHandle.current().pid())
                    .forEach(p -> {
                        p.destroyForcibly();
                        p.onExit().join();
                    });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        // A failed container test may leave its overlay mounted, and a sandbox left running its
        // agent's socket directory (a tmpfs in the runtime directory): never delete through a mount.
        String runtime = dirs.runtime().toString();
        try {
            java.nio.file.Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .map(l -> l.split(" ")[4])
                    .filter(m -> m.startsWith(data) || m.startsWith(runtime + "/"))
                    .sorted(java.util.Comparator.comparingInt(String::length).reversed())
                    .forEach(m -> dev.airlock.host.HostCommand.run(java.util.List.of("umount", "-l", m), null, null));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        dev.airlock.host.HostFiles.deleteTree(dirs.data());
        dev.airlock.host.HostFiles.deleteTree(dirs.runtime());
    }

    /**
     * Whether {@code proc} runs in a mount namespace of its own (not this process's, where the
     * sandboxes' disks are mounted too) that has a mount from under {@code data}.
     */
    private static boolean mountsUnder(Path proc, String data) {
        try {
            Path ours = java.nio.file.Files.readSymbolicLink(Path.of("/proc/self/ns/mnt"));
            return !java.nio.file.Files.readSymbolicLink(proc.resolve("ns/mnt")).equals(ours)
                    && java.nio.file.Files.readString(proc.resolve("mountinfo")).contains(data);
        } catch (IOException e) {
            return false; // gone, or not ours to read
        }
    }

    /** Shared cache, fresh data and runtime directories. */
    public static AirlockDirs isolated(String name) {
        AirlockDirs shared = AirlockDirs.fromEnvironment();
        try {
            Path data = Files.createTempDirectory("airlock-test-" + name + "-");
            Path runtime = Files.createTempDirectory(Path.of("/tmp"), "alr");
            return new AirlockDirs(shared.home(), shared.cache(), data, runtime);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
