package dev.airlock.bench;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.image.GuestAgent;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.oci.Container;
import dev.airlock.oci.ContainerException;
import dev.airlock.oci.ContainerSpec;
import dev.airlock.oci.ImageMounts;
import dev.airlock.oci.OciConfig;
import dev.airlock.oci.OciContainers;
import dev.airlock.oci.OciRuntime;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * Container mode against the runtimes' own fast paths, in one run, iterations interleaved:
 *
 * <ul>
 *   <li>create: Airlock's create (overlay mount, config, {@code run} as the monitor, agent socket,
 *       HELLO) to the result of a first {@code true}; against {@code <runtime> run} of the same
 *       config and rootfs with {@code /bin/true} as the process (overlay already mounted), and
 *       {@code podman run --rootfs} of the same rootfs when podman is installed.
 *   <li>exec: one {@code true} over an open agent session, against {@code <runtime> exec}.
 * </ul>
 *
 * <p>Flags: {@code --n 20 --warmup 2 --runtime crun|runc|PATH --out DIR}.
 */
public final class ContainerBench {
    private static final JsonMapper JSON =
            JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    private final int n;
    private final int warmup;
    private final OciRuntime runtime;
    private final OciContainers backend;
    private final Path image;
    private final Path agent;
    private final Path work;
    private final Path sockets;
    private final @Nullable Path podman;
    private final Map<String, List<Double>> samples = new LinkedHashMap<>();

    private ContainerBench(Map<String, String> flags) throws IOException {
        this.n = Integer.parseInt(flags.getOrDefault("n", "20"));
        this.warmup = Integer.parseInt(flags.getOrDefault("warmup", "2"));
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        Path state = Path.of("/run/airlock-bench");
        String rt = flags.getOrDefault("runtime", "crun");
        this.runtime = new OciRuntime(
                rt.contains("/")
                        ? Path.of(rt)
                        : OciRuntime.onPath(rt).orElseThrow(() -> new ContainerException(rt + " not found")),
                state);
        this.backend = new OciContainers(runtime, new ImageMounts(dirs.cache().resolve("container-mounts")));
        Image base = new ImageStore(dirs)
                .find("base")
                .orElseThrow(() -> new ContainerException("no base image: run bin/airlock setup"));
        this.image = base.file();
        this.agent = GuestAgent.bundled(dirs).binary();
        this.work = Files.createTempDirectory("airlock-bench-ct-");
        this.sockets = Files.createTempDirectory(Path.of("/tmp"), "albc");
        this.podman = OciRuntime.onPath("podman").orElse(null);
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> flags = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (argv[i].equals("-h") || argv[i].equals("--help")) {
                System.out.println("bench/container.sh [--n 20] [--warmup 2] [--runtime crun|runc|PATH] [--out DIR]");
                return;
            }
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
                throw new IllegalArgumentException("bad argument " + argv[i] + " (try --help)");
            }
            flags.put(argv[i].substring(2), argv[++i]);
        }
        ContainerBench b = new ContainerBench(flags);
        try {
            b.run(Path.of(flags.getOrDefault(
                    "out",
                    Path.of(System.getProperty("airlock.home", "."), "bench", "results")
                            .toString())));
        } finally {
            HostFiles.deleteTree(b.sockets);
            HostFiles.deleteTree(b.work);
        }
    }

    private void run(Path outDir) throws Exception {
        Instant started = Instant.now().truncatedTo(ChronoUnit.SECONDS);
        System.err.printf(
                "container bench: %d warm-up + %d runs; runtime %s%s; podman %s%n",
                warmup,
                n,
                runtime.binary(),
                runtime.hidesUnifiedCgroup() ? " (private mount ns, cgroup2 hidden)" : "",
                podman == null ? "not installed" : podman);
        for (int i = 0; i < warmup + n; i++) {
            boolean keep = i >= warmup;
            airlockCreateAndExec(i, keep);
            runtimeRun(i, keep);
            if (podman != null) {
                podmanRun(i, keep);
            }
            System.err.printf("  %s %d done%n", keep ? "run" : "warm-up", keep ? i - warmup + 1 : i + 1);
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        String rtName = runtime.binary().getFileName().toString();
        row(rows, "airlock.create", "airlock: create -> first exec result", "runtime.run");
        row(rows, "runtime.run", rtName + " run /bin/true (same config, rootfs)", null);
        row(rows, "podman.run", "podman run --rootfs /bin/true", "runtime.run");
        row(rows, "airlock.exec", "airlock: exec true (open session)", "runtime.exec");
        row(rows, "runtime.exec", rtName + " exec /bin/true", null);
        print(rows);
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("benchmark", "container");
        root.put("started", started.toString());
        root.put("runtime", runtime.binary().toString());
        root.put("cgroup2Hidden", runtime.hidesUnifiedCgroup());
        root.put("podman", podman == null ? null : podman.toString());
        root.put("config", Map.of("n", n, "warmup", warmup, "image", image.toString()));
        root.put("figures", rows);
        root.put(
                "notes",
                List.of(
                        "airlock.create includes mounting the overlay, writing config.json, starting run (the monitor), waiting"
                                + " for the agent's socket, HELLO and one exec; runtime.run has its overlay mounted"
                                + " beforehand",
                        "podman runs with --runtime runc --cgroup-manager cgroupfs --network none: its crun would"
                                + " refuse this host's hybrid cgroups; --ulimit nofile/nproc=4096 as the host cannot raise them"));
        Files.createDirectories(outDir);
        Path file = outDir.resolve("container-"
                + DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HHmmss'Z'")
                        .withZone(ZoneOffset.UTC)
                        .format(started) + ".json");
        Files.writeString(file, JSON.writeValueAsString(root) + "\n");
        System.out.println("\nresult: " + file);
    }

    private void airlockCreateAndExec(int i, boolean keep) throws Exception {
        ContainerSpec spec = spec("a" + i);
        long t0 = System.nanoTime();
        Container c = backend.create(spec, Duration.ofSeconds(30));
        try {
            try (GuestChannel ch = c.connect(Duration.ofSeconds(10))) {
                ExitStatus st = ch.exec(
                                ExecSpec.of("true"), OutputStream.nullOutputStream(), OutputStream.nullOutputStream())
                        .await();
                long t1 = System.nanoTime();
                check(st.exitCode() == 0, "true failed in the container");
                add(keep, "airlock.create", t1 - t0);
                for (int k = 0; k < 5; k++) {
                    long e0 = System.nanoTime();
                    ch.exec(ExecSpec.of("true"), OutputStream.nullOutputStream(), OutputStream.nullOutputStream())
                            .await();
                    add(keep, "airlock.exec", System.nanoTime() - e0);
                }
            }
            for (int k = 0; k < 5; k++) {
                long e0 = System.nanoTime();
                HostCommand.Result r = runtime.exec(c.id(), List.of("/bin/true"));
                long e1 = System.nanoTime();
                check(r.ok(), "runtime exec failed: " + r.output());
                add(keep, "runtime.exec", e1 - e0);
            }
        } finally {
            backend.remove(c);
        }
    }

    private void runtimeRun(int i, boolean keep) throws Exception {
        ContainerSpec spec = spec("r" + i);
        Container c = backend.prepare(spec);
        try {
            OciConfig.write(OciConfig.build(spec, c.rootfs(), c.cgroup().path(), List.of("/bin/true")), c.bundle());
            List<String> argv = runtime.command("run", "--bundle", c.bundle().toString(), spec.id());
            long t0 = System.nanoTime();
            HostCommand.Result r = HostCommand.run(argv, null, null);
            long t1 = System.nanoTime();
            check(r.ok(), "runtime run failed: " + r.output());
            add(keep, "runtime.run", t1 - t0);
        } finally {
            backend.remove(c);
        }
    }

    private void podmanRun(int i, boolean keep) throws Exception {
        ContainerSpec spec = spec("p" + i);
        Container c = backend.prepare(spec);
        try {
            Path runc = OciRuntime.onPath("runc").orElseThrow();
            List<String> argv = List.of(
                    String.valueOf(podman),
                    "--cgroup-manager",
                    "cgroupfs",
                    "--runtime",
                    runc.toString(),
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    // podman asks for nofile 1048576; the host's hard limit is 20000 (no CAP_SYS_RESOURCE)
                    "--ulimit",
                    "nofile=4096:4096",
                    "--ulimit",
                    "nproc=4096:4096",
                    "--rootfs",
                    c.rootfs().toString(),
                    "/bin/true");
            long t0 = System.nanoTime();
            HostCommand.Result r = HostCommand.run(argv, null, null);
            long t1 = System.nanoTime();
            check(r.ok(), "podman run failed: " + r.output());
            add(keep, "podman.run", t1 - t0);
        } finally {
            backend.remove(c);
        }
    }

    private ContainerSpec spec(String name) {
        String id = "bench-" + ProcessHandle.current().pid() + "-" + name;
        return ContainerSpec.builder(id, image, work.resolve(id), agent)
                .socketDir(sockets.resolve(name))
                .build();
    }

    private void add(boolean keep, String key, long nanos) {
        if (keep) {
            samples.computeIfAbsent(key, k -> new ArrayList<>()).add(nanos / 1e6);
        }
    }

    private void row(List<Map<String, Object>> rows, String key, String label, @Nullable String baseline) {
        List<Double> s = samples.get(key);
        if (s == null || s.isEmpty()) {
            return;
        }
        Stats st = Stats.of(s);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("label", label);
        m.put("unit", "ms");
        m.put("n", st.n());
        m.put("median", round(st.median()));
        m.put("p95", round(st.p95()));
        m.put("min", round(st.min()));
        m.put("max", round(st.max()));
        m.put("baseline", baseline);
        Optional<Double> base = Optional.ofNullable(baseline)
                .map(samples::get)
                .filter(b -> !b.isEmpty())
                .map(b -> Stats.of(b).median());
        m.put("ratio", base.map(b -> round(st.median() / b)).orElse(null));
        m.put("samples", s.stream().map(ContainerBench::round).toList());
        rows.add(m);
    }

    private static void print(List<Map<String, Object>> rows) {
        String head = String.format(
                Locale.ROOT,
                "%-44s %4s %9s %9s %9s %9s  %-14s %7s",
                "figure (ms)",
                "n",
                "median",
                "p95",
                "min",
                "max",
                "baseline",
                "ratio");
        System.out.println();
        System.out.println(head);
        System.out.println("-".repeat(head.length()));
        for (Map<String, Object> r : rows) {
            Object ratio = r.get("ratio");
            Object baseline = r.get("baseline");
            System.out.println(String.format(
                    Locale.ROOT,
                    "%-44s %4s %9.2f %9.2f %9.2f %9.2f  %-14s %7s",
                    r.get("label"),
                    r.get("n"),
                    (Double) r.get("median"),
                    (Double) r.get("p95"),
                    (Double) r.get("min"),
                    (Double) r.get("max"),
                    baseline == null ? "" : baseline,
                    ratio == null ? "" : String.format(Locale.ROOT, "%.2fx", (Double) ratio)));
        }
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new ContainerException(message);
        }
    }
}
