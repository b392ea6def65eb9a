package dev.airlock.ociruntime;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.testing.Cli;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.jspecify.annotations.Nullable;

/** What the tests of real OCI clients (podman, containerd) share: the runtime they call, running them. */
final class OciTestKit {
    private OciTestKit() {}

    record Run(int exit, String out, String err) {}

    /**
     * Writes what bin/airlock-runtime runs, on the classes under test and the test's private
     * dirs, to {@code file}; with {@code root}, every call gets {@code --root root} first.
     */
    static Path launcher(AirlockDirs dirs, Path file, @Nullable Path root) throws IOException {
        StringBuilder env = new StringBuilder();
        Map<String, String> e = new java.util.TreeMap<>();
        new Cli(dirs).environment(e);
        e.forEach(
                (k, v) -> env.append("export ").append(k).append("='").append(v).append("'\n"));
        Files.writeString(
                file,
                "#!/bin/sh\n" + env + "exec '" + Path.of(System.getProperty("java.home"), "bin", "java")
                        + "' --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
                        + " -Dairlock.home='" + dirs.home() + "' -cp '" + System.getProperty("java.class.path")
                        + "' dev.airlock.ociruntime.AirlockRuntime" + (root == null ? "" : " --root '" + root + "'")
                        + " \"$@\"\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
        return file;
    }

    /** Runs {@code argv} with {@code env} added, {@code stdin} written (or none), both outputs read. */
    static Run run(@Nullable String stdin, List<String> argv, Map<String, String> env) {
        ProcessBuilder pb = new ProcessBuilder(argv);
        pb.environment().putAll(env);
        try {
            Process p = pb.start();
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
            try (var in = p.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            return new Run(p.waitFor(), out.join(), err.join());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static String read(InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The clients' mounts (podman's overlays, containerd's snapshots) under {@code dir}, deepest first. */
    static void unmountUnder(Path dir) {
        try {
            Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .map(l -> l.split(" ")[4])
                    .filter(m -> m.startsWith(dir.toString()))
                    .sorted(Comparator.comparingInt(String::length).reversed())
                    .forEach(m -> HostCommand.run(List.of("umount", "-l", m), null, null));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
