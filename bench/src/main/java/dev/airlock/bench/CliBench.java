package dev.airlock.bench;

import dev.airlock.container.Container;
import dev.airlock.container.ContainerSpec;
import dev.airlock.container.ImageMounts;
import dev.airlock.container.OciContainers;
import dev.airlock.container.OciRuntime;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.ImageStore;
import dev.airlock.sdk.Airlock;
import dev.airlock.sdk.Command;
import dev.airlock.sdk.ExecResult;
import dev.airlock.sdk.Sandbox;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The CLI as a person types it, beside the tool they know: {@code airlock exec NAME -- true} on
 * a running container sandbox and {@code airlock ps}, each a new JVM as from a shell, against
 * {@code podman exec CTR true} in a running container of the same root filesystem, in one run;
 * and the same exec from a program through the Java SDK (a warm JVM: one HTTP request each).
 * With {@code --before-jar}, an older build of the CLI is measured the same way (its own daemon
 * and data directory), to show what a change did.
 */
public final class CliBench {
    private final Args args;
    private final Report report = new Report("cli");
    private final Path java = Path.of(System.getProperty("java.home"), "bin", "java");

    private CliBench(Args args) {
        this.args = args;
    }

    public static void main(String[] argv) throws Exception {
        Args a = new Args("bench/cli.sh")
                .flag("n", 20, "timed commands of each kind")
                .flag("warmup", 3, "untimed commands first")
                .flag("jar", "", "the CLI's jar (default: airlock/target/airlock.jar)")
                .flag("before-jar", "", "an older build's jar, measured the same way (optional)")
                .flag("out", "", "where the JSON goes (default: bench/results)")
                .parse(argv);
        new CliBench(a).run();
    }

    private void run() throws Exception {
        String home = System.getProperty("airlock.home", ".");
        Path jar = args.string("jar").isEmpty()
                ? Path.of(home, "airlock", "target", "airlock.jar")
                : Path.of(args.string("jar"));
        int n = args.integer("n", 1);
        int warmup = args.integer("warmup", 0);
        report.config(args.effective());
        List<Double> podman = podmanExec(n, warmup);
        report.add("podman.exec", "podman exec CTR true (runc, running container)", "ms", podman, null);
        String before = args.string("before-jar");
        if (!before.isEmpty()) {
            Timings old = airlock(Path.of(before), n, warmup, false);
            report.add(
                    "before.exec",
                    "airlock exec NAME -- true, before (" + before + ")",
                    "ms",
                    old.exec(),
                    "podman.exec");
            report.add("before.ps", "airlock ps, before", "ms", old.ps(), null);
        }
        Timings now = airlock(jar, n, warmup, true);
        report.add("airlock.exec", "airlock exec NAME -- true (container sandbox)", "ms", now.exec(), "podman.exec");
        report.add(
                "sdk.exec",
                "Java SDK sandbox.exec(true), a program's warm JVM over the unix socket",
                "ms",
                now.sdkExec(),
                "podman.exec");
        report.add("airlock.ps", "airlock ps", "ms", now.ps(), null);
        report.note("each command is a new JVM started as bin/airlock starts it (java -XX:+UseSerialGC"
                + " -XX:TieredStopAtLevel=1 -Xshare:auto -jar JAR ...), its daemon already running");
        report.print(System.out);
        String out = args.string("out");
        Path written = report.write(out.isEmpty() ? Path.of(home, "bench", "results") : Path.of(out));
        System.err.println("bench: wrote " + written);
    }

    /** Wall times of one build's commands, in ms. */
    private record Timings(List<Double> exec, List<Double> ps, List<Double> sdkExec) {}

    /**
     * Times exec and ps of one build of the CLI, with its own daemon and data directory, and
     * (with {@code sdk}) the same exec through the Java SDK from this JVM.
     */
    private Timings airlock(Path jar, int n, int warmup, boolean sdk) throws IOException {
        Path tmp = Files.createTempDirectory("airlock-bench-cli-");
        Path runtime = Files.createTempDirectory(Path.of("/tmp"), "albcli");
        AirlockDirs shared = AirlockDirs.fromEnvironment();
        Map<String, String> env = Map.of(
                "AIRLOCK_CACHE_DIR", shared.cache().toString(),
                "AIRLOCK_DATA_DIR", tmp.resolve("data").toString(),
                "AIRLOCK_RUNTIME_DIR", runtime.toString());
        try {
            check(cli(jar, env, "run", "-d", "--runtime", "container", "--name", "clibench"), "run -d");
            List<Double> exec = time(n, warmup, () -> check(cli(jar, env, "exec", "clibench", "--", "true"), "exec"));
            List<Double> ps = time(n, warmup, () -> check(cli(jar, env, "ps"), "ps"));
            List<Double> sdkExec = sdk ? sdkExec(runtime.resolve("airlockd.sock"), n, warmup) : List.of();
            return new Timings(exec, ps, sdkExec);
        } finally {
            // Also after a failure: a container left running would keep its overlay mounted.
            cli(jar, env, "rm", "-f", "clibench");
            stopDaemon(runtime);
            HostFiles.deleteTree(tmp);
            HostFiles.deleteTree(runtime);
        }
    }

    /** {@code sandbox.exec(true)} through the SDK: one HTTP request per command, no JVM start. */
    private static List<Double> sdkExec(Path socket, int n, int warmup) {
        try (Airlock airlock = Airlock.connect(socket)) {
            Sandbox box = airlock.sandboxes().get("clibench");
            return time(n, warmup, () -> {
                ExecResult r = box.exec(Command.of("true"));
                if (r.exitCode() != 0) {
                    throw new IllegalStateException("SDK exec of true exited " + r.exitCode());
                }
            });
        }
    }

    private HostCommand.Result cli(Path jar, Map<String, String> env, String... cmd) {
        List<String> argv = new ArrayList<>(List.of(
                java.toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dairlock.home=" + System.getProperty("airlock.home", "."),
                "-jar",
                jar.toString()));
        argv.addAll(List.of(cmd));
        return HostCommand.run(withEnv(env, argv), null, null);
    }

    private static List<String> withEnv(Map<String, String> env, List<String> argv) {
        List<String> a = new ArrayList<>(List.of("env"));
        env.forEach((k, v) -> a.add(k + "=" + v));
        a.addAll(argv);
        return a;
    }

    private static void stopDaemon(Path runtime) {
        try {
            long pid = Long.parseLong(
                    Files.readString(runtime.resolve("airlockd.pid")).strip());
            ProcessHandle.of(pid).ifPresent(p -> {
                p.destroy();
                p.onExit().join();
            });
        } catch (IOException | NumberFormatException e) {
            // no daemon was started
        }
    }

    /** {@code podman exec} in a running container of the base image's root filesystem. */
    private List<Double> podmanExec(int n, int warmup) throws Exception {
        Path podman = OciRuntime.onPath("podman")
                .orElseThrow(
                        () -> new IllegalStateException("podman is not installed (bin/airlock setup installs it)"));
        Path runc = OciRuntime.onPath("runc").orElseThrow();
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        Path work = Files.createTempDirectory("airlock-bench-podman-");
        Path conf = work.resolve("containers.conf");
        // No CAP_SYS_RESOURCE and no systemd on this host: podman's default ulimits and cgroup
        // manager do not work here.
        Files.writeString(
                conf,
                "[containers]\ndefault_ulimits = [\"nofile=1024:20000\", \"nproc=4096:4096\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\n");
        OciContainers containers = new OciContainers(
                new OciRuntime(runc, work.resolve("state")),
                new ImageMounts(dirs.cache().resolve("mounts")));
        Container c = containers.prepare(ContainerSpec.builder(
                        "bench-podman-" + ProcessHandle.current().pid(),
                        new ImageStore(dirs).find("base").orElseThrow().file(),
                        work.resolve("ct"),
                        GuestAgent.bundled(dirs).binary())
                .socketDir(work.resolve("sock"))
                .build());
        String name = "airlock-bench-" + ProcessHandle.current().pid();
        Map<String, String> env = Map.of("CONTAINERS_CONF", conf.toString());
        try {
            check(
                    HostCommand.run(
                            withEnv(
                                    env,
                                    List.of(
                                            podman.toString(),
                                            "--runtime",
                                            runc.toString(),
                                            "run",
                                            "-d",
                                            "--name",
                                            name,
                                            "--network",
                                            "none",
                                            "--rootfs",
                                            c.rootfs().toString(),
                                            "sleep",
                                            "3600")),
                            null,
                            null),
                    "podman run -d");
            List<String> exec =
                    withEnv(env, List.of(podman.toString(), "--runtime", runc.toString(), "exec", name, "true"));
            return time(n, warmup, () -> check(HostCommand.run(exec, null, null), "podman exec"));
        } finally {
            HostCommand.run(
                    withEnv(env, List.of(podman.toString(), "--runtime", runc.toString(), "rm", "-f", "-t", "0", name)),
                    null,
                    null);
            containers.remove(c);
            HostFiles.deleteTree(work);
        }
    }

    private static List<Double> time(int n, int warmup, Runnable command) {
        List<Double> out = new ArrayList<>();
        for (int i = 0; i < warmup + n; i++) {
            long t = System.nanoTime();
            command.run();
            if (i >= warmup) {
                out.add((System.nanoTime() - t) / 1e6);
            }
        }
        return out;
    }

    private static @Nullable Void check(HostCommand.Result r, String what) {
        if (!r.ok()) {
            throw new IllegalStateException(
                    what + " failed (exit " + r.exitCode() + "): " + r.output().strip());
        }
        return null;
    }
}
