package dev.airlock.bench;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.ImageStore;
import dev.airlock.oci.Container;
import dev.airlock.oci.ContainerSpec;
import dev.airlock.oci.ImageMounts;
import dev.airlock.oci.OciContainers;
import dev.airlock.oci.OciRuntime;
import dev.airlock.sdk.Airlock;
import dev.airlock.sdk.Command;
import dev.airlock.sdk.ExecResult;
import dev.airlock.sdk.Sandbox;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The CLI as a person types it, beside the tool they know: {@code airlock exec NAME -- true} on
 * a running container sandbox and {@code airlock ps}, each a new JVM as from a shell, against
 * {@code podman exec CTR true} in a running container of the same root filesystem, in one run.
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
        report.add("crun.exec", "crun exec CTR /bin/true (running container)", "ms", crunExec(n, warmup), null);
        String before = args.string("before-jar");
        if (!before.isEmpty()) {
            Timings old = airlock(javaCommand(Path.of(before)), n, warmup, false);
            report.add(
                    "before.exec",
                    "airlock exec NAME -- true, before (" + before + ")",
                    "ms",
                    old.exec(),
                    "podman.exec");
            report.add("before.ps", "airlock ps, before", "ms", old.ps(), null);
        }
        boolean launcher = args.string("jar").isEmpty();
        if (launcher) {
            // The launcher as a person runs it, its start-up cache made first (in the foreground).
            Timings noCache = airlock(launcherCommand(home, "off"), n, warmup, false);
            report.add(
                    "nocache.exec", "bin/airlock exec NAME -- true, no AOT cache", "ms", noCache.exec(), "podman.exec");
            report.add("nocache.ps", "bin/airlock ps, no AOT cache", "ms", noCache.ps(), null);
        }
        Timings now = airlock(launcher ? launcherCommand(home, "sync") : javaCommand(jar), n, warmup, true);
        report.add("airlock.exec", "airlock exec NAME -- true (container sandbox)", "ms", now.exec(), "podman.exec");
        report.add(
                "airlock.exec.vs.crun", "airlock exec NAME -- true, against crun exec", "ms", now.exec(), "crun.exec");
        report.add(
                "sdk.exec",
                "Java SDK sandbox.exec(true), a program's warm JVM over the unix socket",
                "ms",
                now.sdkExec(),
                "podman.exec");
        report.add("airlock.ps", "airlock ps", "ms", now.ps(), null);
        report.add(
                "airlock.exec.cpu", "  CPU (user+sys) of the CLI's process tree per exec", "ms", now.execCpu(), null);
        report.add("airlock.ps.cpu", "  CPU (user+sys) of the CLI's process tree per ps", "ms", now.psCpu(), null);
        report.note(
                launcher
                        ? "each command is bin/airlock (the launcher, then a new JVM with the jar's AOT cache), its"
                                + " daemon already running; nocache rows: the same with AIRLOCK_AOT=off"
                        : "each command is a new JVM (java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -jar JAR)");
        report.print(System.out);
        String out = args.string("out");
        Path written = report.write(out.isEmpty() ? Path.of(home, "bench", "results") : Path.of(out));
        System.err.println("bench: wrote " + written);
    }

    /** Wall times of one build's commands, and the CPU their processes used, in ms. */
    private record Timings(
            List<Double> exec, List<Double> ps, List<Double> execCpu, List<Double> psCpu, List<Double> sdkExec) {}

    /** A CLI as a new JVM on a jar, with the launcher's JVM flags. */
    private List<String> javaCommand(Path jar) {
        return List.of(
                java.toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dairlock.home=" + System.getProperty("airlock.home", "."),
                "-jar",
                jar.toString());
    }

    /** The CLI through bin/airlock; {@code aot}: its AIRLOCK_AOT (off, or sync: make the cache first). */
    private static List<String> launcherCommand(String home, String aot) {
        return List.of(
                "env", "AIRLOCK_AOT=" + aot, Path.of(home, "bin", "airlock").toString());
    }

    /**
     * Times exec and ps of one build of the CLI, with its own daemon and data directory, and
     * (with {@code sdk}) the same exec through the Java SDK from this JVM.
     */
    private Timings airlock(List<String> cli, int n, int warmup, boolean sdk) throws IOException {
        Path tmp = Files.createTempDirectory("airlock-bench-cli-");
        Path runtime = Files.createTempDirectory(Path.of("/tmp"), "albcli");
        AirlockDirs shared = AirlockDirs.fromEnvironment();
        Map<String, String> env = Map.of(
                "AIRLOCK_CACHE_DIR", shared.cache().toString(),
                "AIRLOCK_DATA_DIR", tmp.resolve("data").toString(),
                "AIRLOCK_RUNTIME_DIR", runtime.toString());
        try {
            check(cli(cli, env, "run", "-d", "--runtime", "container", "--name", "clibench"), "run -d");
            List<Double> execCpu = new ArrayList<>();
            List<Double> exec =
                    time(n, warmup, execCpu, () -> check(cli(cli, env, "exec", "clibench", "--", "true"), "exec"));
            List<Double> psCpu = new ArrayList<>();
            List<Double> ps = time(n, warmup, psCpu, () -> check(cli(cli, env, "ps"), "ps"));
            List<Double> sdkExec = sdk ? sdkExec(runtime.resolve("airlockd.sock"), n, warmup) : List.of();
            return new Timings(exec, ps, execCpu, psCpu, sdkExec);
        } finally {
            // Also after a failure: a container left running would keep its overlay mounted.
            cli(cli, env, "rm", "-f", "clibench");
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

    private static HostCommand.Result cli(List<String> cli, Map<String, String> env, String... cmd) {
        List<String> argv = new ArrayList<>(cli);
        argv.addAll(List.of(cmd));
        return HostCommand.run(withEnv(env, argv), null, null);
    }

    private static List<String> withEnv(Map<String, String> env, List<String> argv) {
        List<String> a = new ArrayList<>(List.of("env"));
        env.forEach((k, v) -> a.add(k + "=" + v));
        a.addAll(argv);
        return a;
    }

    static void stopDaemon(Path runtime) {
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
    static List<Double> podmanExec(int n, int warmup) throws Exception {
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

    /**
     * {@code crun exec CTR /bin/true} in a running container of the base image, made the way a
     * container sandbox is (bench/container.sh's runtime baseline).
     */
    private List<Double> crunExec(int n, int warmup) throws Exception {
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        OciRuntime crun = new OciRuntime(
                OciRuntime.onPath("crun").orElseThrow(() -> new IllegalStateException("crun is not installed")),
                Path.of("/run/airlock-bench-cli"));
        OciContainers containers =
                new OciContainers(crun, new ImageMounts(dirs.cache().resolve("container-mounts")));
        Path work = Files.createTempDirectory("airlock-bench-crun-");
        Path sockets = Files.createTempDirectory(Path.of("/tmp"), "albcr");
        String id = "bench-cli-" + ProcessHandle.current().pid();
        Container c = containers.create(
                ContainerSpec.builder(
                                id,
                                new ImageStore(dirs).find("base").orElseThrow().file(),
                                work.resolve(id),
                                GuestAgent.bundled(dirs).binary())
                        .socketDir(sockets)
                        .build(),
                Duration.ofSeconds(30));
        try {
            return time(n, warmup, () -> check(crun.exec(c.id(), List.of("/bin/true")), "crun exec"));
        } finally {
            containers.remove(c);
            HostFiles.deleteTree(work);
            HostFiles.deleteTree(sockets);
        }
    }

    private static List<Double> time(int n, int warmup, Runnable command) {
        return time(n, warmup, new ArrayList<>(), command);
    }

    /**
     * Wall times in ms; {@code cpu} gets the CPU time (user + system) each run's processes used
     * (this JVM's reaped children: the host is shared, so wall time carries other work's load
     * and CPU time says what the command itself cost).
     */
    private static List<Double> time(int n, int warmup, List<Double> cpu, Runnable command) {
        List<Double> out = new ArrayList<>();
        for (int i = 0; i < warmup + n; i++) {
            double c0 = childrenCpuMillis();
            long t = System.nanoTime();
            command.run();
            if (i >= warmup) {
                out.add((System.nanoTime() - t) / 1e6);
                cpu.add(childrenCpuMillis() - c0);
            }
        }
        return out;
    }

    /** cutime + cstime of this process (its waited-for children's CPU), in ms. */
    private static double childrenCpuMillis() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[13]) + Long.parseLong(f[14])) * 10.0; // USER_HZ is 100
        } catch (IOException e) {
            return Double.NaN;
        }
    }

    static @Nullable Void check(HostCommand.Result r, String what) {
        if (!r.ok()) {
            throw new IllegalStateException(
                    what + " failed (exit " + r.exitCode() + "): " + r.output().strip());
        }
        return null;
    }
}
