package dev.airlock.bench;

import dev.airlock.daemon.HostBackends;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestChannelClosedException;
import dev.airlock.gvisor.GvisorBackend;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.image.GuestAgent;
import dev.airlock.oci.Container;
import dev.airlock.oci.ContainerSpec;
import dev.airlock.oci.ImageMounts;
import dev.airlock.oci.OciConfig;
import dev.airlock.oci.OciContainers;
import dev.airlock.oci.OciRuntime;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Sandbox;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * The three runtimes side by side in one run (gvisor, container, microvm), through the engine as
 * the daemon drives them, with the bare runtimes as baselines measured in the same run,
 * iterations interleaved so host noise hits all alike:
 *
 * <ul>
 *   <li>create -> first exec result: create + start + a new session running {@code true} to its
 *       exit; against {@code runsc --platform=P --network=none do true} (P: the platform Airlock
 *       chose here), {@code runsc run} with Airlock's flags and {@code crun run}, both of the same
 *       image and agent-less config with {@code /bin/true}.
 *   <li>exec round trip: {@code true} on an open session.
 *   <li>warm-pool claim -> first exec (gvisor, microvm): the same create + start + first exec when
 *       a started sandbox of that configuration is ready (pool of one, refilled and waited for
 *       between claims, outside the timing).
 *   <li>many: N sandboxes each created, started, run {@code true} and removed, {@code --parallel}
 *       at a time; total wall seconds (no pool).
 *   <li>idle memory: PSS of a sandbox's host processes (QEMU; the Sentry, gofer and runsc
 *       monitor; crun's container) once idle, and its cgroup's memory.current for OCI runtimes.
 * </ul>
 */
public final class RuntimeBench {
    private static final Duration TIMEOUT = Duration.ofMinutes(3);
    private static final OutputStream DISCARD = OutputStream.nullOutputStream();
    private static final Pattern COMMA = Pattern.compile(",");

    private final Args args;
    private final BenchEnv env;
    private final SandboxEngine engine;
    private final Report report;
    private final List<String> runtimes;
    private final List<String> sandboxes = new ArrayList<>();
    private final Map<String, List<Double>> samples = new HashMap<>();
    private int counter;

    private RuntimeBench(Args args, BenchEnv env) {
        this.args = args;
        this.env = env;
        // Templates on: a microVM create restores one, as the daemon does by default.
        this.engine = HostBackends.engine(env.dirs, BenchEnv.LOG, true);
        this.report = new Report("runtimes").host(env.hostInfo()).config(args.effective());
        this.runtimes = names(args.string("runtimes"));
        env.onClose(this::removeAll);
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/runtimes.sh [flags]")
                .flag("runtimes", "gvisor,container,microvm", "runtimes to measure, in this order")
                .flag("n", 10, "measured create -> first exec per runtime (and as many of each baseline)")
                .flag("warmup", 1, "discarded rounds first")
                .flag("execs", 50, "measured exec round trips per runtime")
                .flag("claims", 10, "measured warm-pool claims per runtime that keeps a pool")
                .flag("many", 100, "sandboxes for the create+exec+rm figure")
                .flag("many-runtimes", "gvisor,container", "runtimes the create+exec+rm figure runs on")
                .flag("parallel", 2, "create+exec+rm at a time")
                .flag("idle", 3, "idle sandboxes per runtime for the memory figure")
                .flag("settle", 5, "seconds the idle sandboxes run before their memory is read")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        try (BenchEnv env = BenchEnv.open()) {
            new RuntimeBench(args, env).run();
        }
    }

    private void run() throws Exception {
        String platform = runtimes.contains("gvisor") ? gvisor().platformInUse() : "";
        report.config("gvisorPlatform", platform);
        firstExec(platform);
        roundTrips();
        pools();
        many();
        memory();
        report.print(System.out);
        System.out.println("\nresult: " + report.write(env.resultsDir(args)));
    }

    private GvisorBackend gvisor() {
        return HostBackends.gvisor(engine);
    }

    // ---- create -> first exec, with the bare runtimes ----

    private void firstExec(String platform) throws Exception {
        int n = args.integer("n", 1);
        int warmup = args.integer("warmup", 0);
        Path runsc = runtimes.contains("gvisor") ? OciRuntime.onPath("runsc").orElse(null) : null;
        Path crun = OciRuntime.onPath("crun").orElse(null);
        BundleRun crunRun = crun == null ? null : new BundleRun("crun", new OciRuntime(crun, env.tmp.resolve("crun")));
        BundleRun runscRun = runsc == null
                ? null
                : new BundleRun(
                        "runsc",
                        new OciRuntime(runsc, env.tmp.resolve("runsc"), GvisorBackend.flags(platform, "none")));
        for (int i = 0; i < warmup + n; i++) {
            boolean keep = i >= warmup;
            StringBuilder line = new StringBuilder(keep ? "round " + (i - warmup + 1) + "/" + n : "warm-up");
            for (String rt : runtimes) {
                double ms = createAndExec(rt, keep);
                add(keep, rt + ".first", ms);
                line.append(String.format(" %s %.0f ms;", rt, ms));
            }
            if (runsc != null) {
                double ms = runscDo(runsc, platform);
                add(keep, "bare.runsc", ms);
                line.append(String.format(" runsc do %.0f ms;", ms));
            }
            if (runscRun != null) {
                double ms = runscRun.once(i);
                add(keep, "bare.runsc.run", ms);
                line.append(String.format(" runsc run %.0f ms;", ms));
            }
            if (crunRun != null) {
                double ms = crunRun.once(i);
                add(keep, "bare.crun", ms);
                line.append(String.format(" crun run %.0f ms", ms));
            }
            BenchEnv.LOG.step(line.toString());
        }
        figure("bare.runsc", "bare: runsc --platform=" + platform + " --network=none do true", "ms", null);
        figure("bare.runsc.run", "bare: runsc run /bin/true (same flags, image, overlay)", "ms", "bare.runsc");
        figure("bare.crun", "bare: crun run /bin/true (same image, overlay)", "ms", null);
        for (String rt : runtimes) {
            String base = switch (rt) {
                case "gvisor" -> "bare.runsc";
                case "container" -> "bare.crun";
                default -> null;
            };
            figure(rt + ".first", rt + ": create -> first exec result", "ms", base);
            figure(rt + ".first.create", "  create (record, layer)", "ms", null);
            figure(rt + ".first.start", "  start (runtime up, agent answers)", "ms", null);
            figure(rt + ".first.exec", "  first exec (connect + exec true)", "ms", null);
        }
    }

    /** create + start + new session + exec true; the sandbox is removed afterwards (not timed). */
    private double createAndExec(String runtime) throws Exception {
        return createAndExec(runtime, false);
    }

    /** {@code parts}: keep the create, start and first-exec parts as figures of their own. */
    private double createAndExec(String runtime, boolean parts) throws Exception {
        long t0 = System.nanoTime();
        Sandbox s = engine.create(options(runtime, "first"));
        track(s.name());
        long t1 = System.nanoTime();
        s = engine.start(s.name());
        long t2 = System.nanoTime();
        try (GuestChannel ch = connect(s)) {
            run(ch, ExecSpec.of("true"));
        }
        long t3 = System.nanoTime();
        add(parts, runtime + ".first.create", ms(t1 - t0));
        add(parts, runtime + ".first.start", ms(t2 - t1));
        add(parts, runtime + ".first.exec", ms(t3 - t2));
        remove(s.name());
        return ms(t3 - t0);
    }

    /** What the issue measured: runsc's own start of a process on the host's root filesystem. */
    private double runscDo(Path runsc, String platform) {
        Path state = env.newDir("runsc-do");
        try {
            List<String> argv = List.of(
                    runsc.toString(),
                    "--root",
                    state.toString(),
                    "--platform=" + platform,
                    "--network=none",
                    "do",
                    "true");
            long t0 = System.nanoTime();
            HostCommand.Result r = HostCommand.run(argv, null, null);
            long t1 = System.nanoTime();
            if (!r.ok()) {
                throw new IllegalStateException(
                        "runsc do true failed: " + r.output().strip());
            }
            return ms(t1 - t0);
        } finally {
            HostFiles.deleteTree(state);
        }
    }

    /**
     * {@code <runtime> run} of the base image's overlay (mounted beforehand, not timed) with
     * /bin/true: the config Airlock writes, without the agent.
     */
    private final class BundleRun {
        private final String name;
        private final OciRuntime runtime;
        private final OciContainers containers;

        BundleRun(String name, OciRuntime runtime) {
            this.name = name;
            this.runtime = runtime;
            this.containers = new OciContainers(runtime, new ImageMounts(env.tmp.resolve(name + "-mounts")));
            // the image stays mounted for the next run; it must go before the directory can
            env.onClose(() -> containers.images().release(env.base.file()));
        }

        double once(int i) {
            String id = "bench-" + ProcessHandle.current().pid() + "-r" + i;
            ContainerSpec spec = ContainerSpec.builder(
                            id,
                            env.base.file(),
                            env.newDir(name),
                            GuestAgent.bundled(env.shared).binary())
                    .socketDir(env.newDir(name + "-sock"))
                    .build();
            Container c = containers.prepare(spec);
            try {
                OciConfig.write(OciConfig.build(spec, c.rootfs(), c.cgroup().path(), List.of("/bin/true")), c.bundle());
                List<String> argv =
                        runtime.command("run", "--bundle", c.bundle().toString(), id);
                long t0 = System.nanoTime();
                HostCommand.Result r = HostCommand.run(argv, null, null);
                long t1 = System.nanoTime();
                if (!r.ok()) {
                    throw new IllegalStateException(
                            name + " run failed: " + r.output().strip());
                }
                return ms(t1 - t0);
            } finally {
                containers.remove(c);
            }
        }
    }

    // ---- exec round trip ----

    private void roundTrips() throws Exception {
        int execs = args.integer("execs", 1);
        for (String rt : runtimes) {
            Sandbox s = engine.create(options(rt, "exec"));
            track(s.name());
            s = engine.start(s.name());
            try (GuestChannel ch = connect(s)) {
                for (int i = 0; i < 5 + execs; i++) {
                    long t0 = System.nanoTime();
                    run(ch, ExecSpec.of("true"));
                    add(i >= 5, rt + ".exec", ms(System.nanoTime() - t0));
                }
            }
            remove(s.name());
            figure(rt + ".exec", rt + ": exec true (open session)", "ms", null);
        }
    }

    // ---- warm pool ----

    private void pools() throws Exception {
        int claims = args.integer("claims", 1);
        for (String rt : runtimes) {
            if (rt.equals("container")) {
                continue; // no pool: a container starts faster than a claim would save
            }
            SandboxEngine pooled = HostBackends.engine(env.dirs, BenchEnv.LOG, true);
            Runnable close = enablePool(pooled, rt);
            try {
                fillFirst(pooled, rt); // the first create of this configuration fills the pool
                for (int i = 0; i < claims; i++) {
                    awaitPool(pooled, rt);
                    long t0 = System.nanoTime();
                    Sandbox s = pooled.create(options(rt, "claim"));
                    long t1 = System.nanoTime();
                    s = pooled.start(s.name());
                    long t2 = System.nanoTime();
                    try (GuestChannel ch = pooled.connect(s, TIMEOUT)) {
                        run(ch, ExecSpec.of("true"));
                    }
                    long t3 = System.nanoTime();
                    double ms = ms(t3 - t0);
                    add(true, rt + ".claim.create", ms(t1 - t0));
                    add(true, rt + ".claim.start", ms(t2 - t1));
                    add(true, rt + ".claim.exec", ms(t3 - t2));
                    if (!pooled.origin(s).contains("pool")) {
                        throw new IllegalStateException(
                                rt + " sandbox was not claimed from the pool: " + pooled.origin(s));
                    }
                    add(true, rt + ".claim", ms);
                    pooled.remove(s.name(), true);
                }
            } finally {
                close.run();
                for (Sandbox s : pooled.list()) {
                    pooled.remove(s.id(), true);
                }
            }
            figure(rt + ".claim", rt + ": warm-pool claim -> first exec result", "ms", rt + ".first");
            figure(rt + ".claim.create", "  create (record, pooled sandbox taken)", "ms", null);
            figure(rt + ".claim.start", "  start (its identity given)", "ms", null);
            figure(rt + ".claim.exec", "  first exec (connect + exec true)", "ms", null);
        }
    }

    private void fillFirst(SandboxEngine e, String rt) throws Exception {
        Sandbox s = e.start(e.create(options(rt, "fill")).name());
        try (GuestChannel ch = e.connect(s, TIMEOUT)) {
            run(ch, ExecSpec.of("true"));
        }
        e.remove(s.name(), true);
    }

    private static Runnable enablePool(SandboxEngine e, String rt) {
        if (rt.equals("gvisor")) {
            HostBackends.gvisor(e).enableWarmPool(1, 4096);
            return () -> closeQuietly(() -> HostBackends.gvisor(e).closeWarmPool(TIMEOUT));
        }
        HostBackends.microvm(e).enableWarmPool(1, 4096);
        return () -> closeQuietly(() -> HostBackends.microvm(e).closeWarmPool(TIMEOUT));
    }

    private static void awaitPool(SandboxEngine e, String rt) throws InterruptedException {
        if (rt.equals("gvisor")) {
            HostBackends.gvisor(e).awaitWarmPool(TIMEOUT);
        } else {
            HostBackends.microvm(e).awaitWarmPool(TIMEOUT);
        }
    }

    private interface Closing {
        void run() throws InterruptedException;
    }

    private static void closeQuietly(Closing c) {
        try {
            c.run();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- many sandboxes ----

    private void many() throws Exception {
        int many = args.integer("many", 0);
        int parallel = args.integer("parallel", 1);
        if (many == 0) {
            return;
        }
        for (String runtime : names(args.string("many-runtimes"))) {
            if (!runtimes.contains(runtime)) {
                continue;
            }
            long t0 = System.nanoTime();
            try (ExecutorService pool = Executors.newFixedThreadPool(parallel)) {
                List<Future<Double>> all = new ArrayList<>();
                for (int i = 0; i < many; i++) {
                    all.add(pool.submit(() -> createAndExec(runtime)));
                }
                for (Future<Double> f : all) {
                    f.get();
                }
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            BenchEnv.LOG.step(String.format("%d %s sandboxes create+exec+rm: %.1f s", many, runtime, seconds));
            add(true, runtime + ".many", seconds);
            figure(
                    runtime + ".many",
                    runtime + ": " + many + " x create+exec+rm, " + parallel + " at a time",
                    "s",
                    null);
        }
    }

    // ---- idle memory ----

    private void memory() throws Exception {
        int k = args.integer("idle", 0);
        if (k == 0) {
            return;
        }
        for (String rt : runtimes) {
            List<Sandbox> idle = new ArrayList<>();
            for (int i = 0; i < k; i++) {
                Sandbox s = engine.create(options(rt, "idle"));
                track(s.name());
                s = engine.start(s.name());
                try (GuestChannel ch = connect(s)) {
                    run(ch, ExecSpec.of("true"));
                }
                idle.add(s);
            }
            // Not a synchronisation: the quantity measured is memory after this much idle time.
            Thread.sleep(Duration.ofSeconds(args.integer("settle", 0)));
            List<Double> pss = new ArrayList<>();
            List<Double> cgroup = new ArrayList<>();
            for (Sandbox s : idle) {
                if (rt.equals("microvm")) {
                    pss.add(engine.stats(s.name()).vmmPssBytes() / 1048576.0);
                } else {
                    pss.add(pssOf(hostProcesses(s)) / 1048576.0);
                    cgroup.add(engine.stats(s.name()).vmmRssBytes() / 1048576.0);
                }
            }
            memoryFigures(rt, pss, cgroup);
            idle.forEach(s -> remove(s.name()));
        }
        report.note("idle memory: PSS summed over the sandbox's host processes (microvm: QEMU; gvisor: the runsc"
                + " sandbox (Sentry), gofer and monitor; container: the container's processes and crun's monitor);"
                + " cgroup: memory.current of the OCI sandbox's host cgroup (includes its page cache)");
    }

    private void memoryFigures(String rt, List<Double> pss, List<Double> cgroup) {
        add(true, rt + ".mem.pss", pss);
        figure(rt + ".mem.pss", rt + ": idle sandbox, host PSS", "MiB", null);
        if (!cgroup.isEmpty()) {
            add(true, rt + ".mem.cgroup", cgroup);
            figure(rt + ".mem.cgroup", rt + ": idle sandbox, cgroup memory", "MiB", null);
        }
    }

    /**
     * An OCI sandbox's host processes: those in its container's cgroup and those naming its
     * container id on their command line (runsc's monitor and gofer may sit outside the cgroup).
     */
    private static Set<Long> hostProcesses(Sandbox s) throws IOException {
        String id = "airlock-" + s.id().substring(0, 16);
        Set<Long> pids = new LinkedHashSet<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.toList()) {
                String name = p.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                try {
                    String cg = Files.readString(p.resolve("cgroup"));
                    byte[] cmd = Files.readAllBytes(p.resolve("cmdline"));
                    String cmdline = new String(cmd, StandardCharsets.UTF_8).replace('\0', ' ');
                    if (cg.contains("/" + id) || cmdline.contains(id)) {
                        pids.add(Long.parseLong(name));
                    }
                } catch (IOException e) {
                    // the process ended meanwhile
                }
            }
        }
        return pids;
    }

    private static long pssOf(Set<Long> pids) {
        long kib = 0;
        for (long pid : pids) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/smaps_rollup"))) {
                    if (line.startsWith("Pss:")) {
                        kib += Long.parseLong(
                                line.substring(4).replace("kB", "").strip());
                    }
                }
            } catch (IOException | NumberFormatException e) {
                // ended meanwhile, or a kernel thread without maps
            }
        }
        return kib << 10;
    }

    // ---- helpers ----

    private void track(String name) {
        synchronized (sandboxes) {
            sandboxes.add(name);
        }
    }

    private synchronized void add(boolean keep, String key, double value) {
        if (keep) {
            samples.computeIfAbsent(key, k -> new ArrayList<>()).add(value);
        }
    }

    private void add(boolean keep, String key, List<Double> values) {
        values.forEach(v -> add(keep, key, v));
    }

    private void figure(String key, String label, String unit, @Nullable String baseline) {
        List<Double> s = samples.get(key);
        if (s != null && !s.isEmpty()) {
            report.add(key, label, unit, s, baseline);
        }
    }

    private synchronized CreateOptions options(String runtime, String what) {
        return CreateOptions.builder()
                .name("bench-" + runtime + "-" + what + "-" + counter++)
                .runtime(runtime)
                .build();
    }

    /** A new session; a HELLO that lands in a just-closed session is retried (see SandboxBench). */
    private GuestChannel connect(Sandbox s) throws IOException, InterruptedException {
        for (int attempt = 1; ; attempt++) {
            try {
                return engine.connect(s, TIMEOUT);
            } catch (GuestChannelClosedException e) {
                if (attempt == 5) {
                    throw e;
                }
                Thread.sleep(250);
            }
        }
    }

    private static void run(GuestChannel ch, ExecSpec spec) throws Exception {
        ExitStatus st = ch.exec(spec, DISCARD, DISCARD).await();
        if (st.exitCode() != 0 || st.signal() != 0) {
            throw new IllegalStateException(spec.argv().getFirst() + " failed in the sandbox: " + st);
        }
    }

    private void remove(String name) {
        try {
            engine.remove(name, true);
        } catch (RuntimeException e) {
            BenchEnv.LOG.step("cannot remove " + name + ": " + e.getMessage());
        }
        synchronized (sandboxes) {
            sandboxes.remove(name);
        }
    }

    private void removeAll() {
        List<String> left;
        synchronized (sandboxes) {
            left = List.copyOf(sandboxes);
        }
        left.forEach(this::remove);
    }

    /** A comma-separated list of runtime names. */
    private static List<String> names(String list) {
        return COMMA.splitAsStream(list)
                .map(String::strip)
                .filter(r -> !r.isEmpty())
                .toList();
    }

    private static double ms(long nanos) {
        return nanos / 1e6;
    }
}
