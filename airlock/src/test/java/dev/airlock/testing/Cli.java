package dev.airlock.testing;

import dev.airlock.host.AirlockDirs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.jspecify.annotations.Nullable;

/**
 * Runs the real {@code airlock} CLI in its own JVM, as a user would, against a test's private
 * data directory: exit codes, stdout and stderr are what the user would see.
 */
public final class Cli {
    private final AirlockDirs dirs;
    private final @Nullable String runtime;
    /** Runs each task on a new virtual thread of its own. */
    private static final java.util.concurrent.Executor OWN_THREAD =
            r -> Thread.ofVirtual().start(r);

    public Cli(AirlockDirs dirs) {
        this(dirs, null);
    }

    private Cli(AirlockDirs dirs, @Nullable String runtime) {
        this.dirs = dirs;
        this.runtime = runtime;
    }

    /** The same CLI with {@code --runtime} added to the commands that make sandboxes. */
    public Cli inRuntime(String name) {
        return new Cli(dirs, name);
    }

    public record Result(int exit, String out, String err) {}

    public Result run(String... args) {
        return run(new byte[0], args);
    }

    public Result run(byte[] stdin, String... args) {
        return run(java.util.Map.of(), stdin, args);
    }

    /** Runs with extra environment variables, as a user who exported them in their shell. */
    public Result run(java.util.Map<String, String> env, byte[] stdin, String... args) {
        ProcessBuilder pb = new ProcessBuilder(argv(args));
        environment(pb.environment());
        pb.environment().putAll(env);
        try {
            Process p = pb.start();
            // A thread each, never the common pool: with one worker there (two cores), stdout was read
            // only after stderr ended, and a command printing more than a pipe's 64 KiB blocked.
            CompletableFuture<byte[]> err =
                    CompletableFuture.supplyAsync(() -> readAll(p.getErrorStream()), OWN_THREAD);
            CompletableFuture<byte[]> out =
                    CompletableFuture.supplyAsync(() -> readAll(p.getInputStream()), OWN_THREAD);
            try (var in = p.getOutputStream()) {
                in.write(stdin);
            }
            int exit = p.waitFor();
            return new Result(
                    exit,
                    new String(out.join(), StandardCharsets.UTF_8),
                    new String(err.join(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Ends this data directory's daemon as {@code kill -9} would, if one runs, and waits until it is gone. */
    public void killDaemon() {
        java.nio.file.Path pidFile = dirs.runtime().resolve("airlockd.pid");
        if (java.nio.file.Files.exists(pidFile)) {
            ProcessHandle.of(daemonPid()).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        }
    }

    /**
     * Runs a command whose work the daemon does, with a daemon that stops dead at failpoint
     * {@code step} ({@code AIRLOCK_FAILPOINT}): the running daemon is ended first, so the command
     * starts one that inherits the failpoint. Asserts that this daemon died at the step; the
     * command's own answer is for the caller.
     */
    public Result withDaemonFailpoint(String step, String... args) {
        killDaemon();
        Result r = run(java.util.Map.of("AIRLOCK_FAILPOINT", step), new byte[0], args);
        long crashed = daemonPid();
        org.assertj.core.api.Assertions.assertThat(endsWithin(crashed, java.time.Duration.ofSeconds(30)))
                .as("the daemon stopped at %s (the command: exit %d, %s)", step, r.exit(), r.err())
                .isTrue();
        try {
            org.assertj.core.api.Assertions.assertThat(
                            java.nio.file.Files.readString(dirs.data().resolve("airlockd.log")))
                    .contains("failpoint " + step + " reached");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return r;
    }

    /**
     * Whether process {@code pid}, not a child of this one, has ended within {@code limit}: gone,
     * or a zombie its parent has not reaped yet (which {@link ProcessHandle#isAlive} counts as
     * alive). Polled: the kernel tells only a parent when a process ends.
     */
    private static boolean endsWithin(long pid, java.time.Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (true) {
            String stat;
            try {
                stat = java.nio.file.Files.readString(Path.of("/proc/" + pid + "/stat"));
            } catch (IOException e) {
                return true;
            }
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            if (state == 'Z' || state == 'X') {
                return true;
            }
            if (System.nanoTime() > deadline) {
                return false;
            }
            java.util.concurrent.locks.LockSupport.parkNanos(50_000_000);
        }
    }

    private long daemonPid() {
        try {
            return Long.parseLong(java.nio.file.Files.readString(dirs.runtime().resolve("airlockd.pid"))
                    .strip());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The command line of the CLI with these arguments, for tests that run it themselves. */
    public List<String> argv(String... args) {
        List<String> argv = new ArrayList<>();
        argv.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        argv.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"));
        argv.add("-Dairlock.home=" + dirs.home());
        argv.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.airlock.cli.Main"));
        int first = argv.size();
        argv.addAll(List.of(args));
        if (runtime != null && args.length > 0 && (args[0].equals("run") || args[0].equals("create"))) {
            argv.addAll(first + 1, List.of("--runtime", runtime));
        }
        return argv;
    }

    /** The environment that points the CLI at this test's directories. */
    public void environment(java.util.Map<String, String> env) {
        env.put("AIRLOCK_CACHE_DIR", dirs.cache().toString());
        env.put("AIRLOCK_DATA_DIR", dirs.data().toString());
        env.put("AIRLOCK_RUNTIME_DIR", dirs.runtime().toString());
    }

    private static byte[] readAll(java.io.InputStream in) {
        try (in) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
