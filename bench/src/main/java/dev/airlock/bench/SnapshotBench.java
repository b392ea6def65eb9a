package dev.airlock.bench;

import dev.airlock.backend.WarmPool;
import dev.airlock.daemon.HostBackends;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestIdentity;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Sandbox;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;

/**
 * The snapshot figures, all in one run against baselines measured in the same run: (a) start
 * from a VM template to the first exec result vs a cold boot, alternating; (b) fork x N of a
 * running sandbox until every clone has answered an exec; (c) marginal host memory (sum of the
 * QEMU processes' PSS) per idle template-started sandbox and per fork; (a2) claim from a warm pool
 * to the first exec; (a3) an exec after idleness against one right after another, leg by leg; (d) many sandboxes each
 * created, running one command and removed, in total; (e) pause and resume of a running sandbox.
 */
public final class SnapshotBench {
    private static final Duration TIMEOUT = Duration.ofSeconds(180);
    private static final OutputStream DISCARD = OutputStream.nullOutputStream();

    private final Args args;
    private final BenchEnv env;
    private final SandboxEngine cold;
    private final SandboxEngine warm;
    private final Report report;
    private final List<String> sandboxes = new ArrayList<>();
    private int counter;

    private SnapshotBench(Args args, BenchEnv env) {
        this.args = args;
        this.env = env;
        this.cold = HostBackends.engine(env.dirs, BenchEnv.LOG, false);
        this.warm = HostBackends.engine(env.dirs, BenchEnv.LOG, true);
        this.report = new Report("snapshot").host(env.hostInfo()).config(args.effective());
        env.onClose(this::removeAll);
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/snapshot.sh [flags]")
                .flag("n", 10, "measured template starts (and as many cold boots)")
                .flag("forks", 10, "clones per fork")
                .flag("fork-runs", 3, "measured forks")
                .flag("idle", 5, "idle sandboxes (and clones) for the memory figure")
                .flag("many", 100, "sandboxes created, run one command and removed, for the total")
                .flag("parallel", 2, "how many of those at a time")
                .flag("pause-runs", 5, "measured pause + resume cycles")
                .flag(
                        "pool-pause-ms",
                        0,
                        "idle time before each of the pool section's execs, left out of its figures (the wake section's pause, 300 when 0)")
                .flag(
                        "copy-baseline",
                        "on",
                        "also fork the way QEMU 7.2 must (RAM copied into a full stream), as the baseline")
                .flag(
                        "sections",
                        String.join(",", SECTIONS),
                        "which parts to run, comma-separated (e.g. forks,memory for the fork rows alone)")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        try (BenchEnv env = BenchEnv.open()) {
            new SnapshotBench(args, env).run();
        }
    }

    private static final List<String> SECTIONS = List.of("starts", "pool", "wake", "forks", "memory", "many", "pauses");

    private void run() throws Exception {
        Set<String> sections = Set.of(args.string("sections").split(","));
        for (String s : sections) {
            if (!SECTIONS.contains(s)) {
                throw new IllegalArgumentException("unknown section " + s + "; the sections are " + SECTIONS);
            }
        }
        if (sections.contains("starts")) {
            starts();
        }
        if (sections.contains("pool")) {
            pool();
        }
        if (sections.contains("wake")) {
            wake();
        }
        boolean baseline = args.string("copy-baseline").equals("on");
        if (sections.contains("forks")) {
            if (baseline) {
                copyingRam(this::forks);
            }
            forks();
        }
        if (sections.contains("memory")) {
            if (baseline) {
                copyingRam(this::memory);
            }
            memory();
        }
        if (sections.contains("many")) {
            many();
        }
        if (sections.contains("pauses")) {
            pauses();
        }
        report.print(System.out);
        System.out.println("\nresult: " + report.write(env.resultsDir(args)));
    }

    private interface Section {
        void run() throws Exception;
    }

    /** The keys of figures measured with RAM copied start with this (the baseline rows). */
    private static final String COPY = "copy.";

    private String prefix = "";

    /** Runs a section with forks saving a full stream (RAM copied), the pre-mapped-ram path. */
    private void copyingRam(Section section) throws Exception {
        System.setProperty("airlock.forkCopiesRam", "true");
        prefix = COPY;
        try {
            section.run();
        } finally {
            System.clearProperty("airlock.forkCopiesRam");
            prefix = "";
        }
    }

    /**
     * Adds a figure of a section that runs twice: the copying run's row is the baseline of the
     * mapped-ram run's (when there was one).
     */
    private void addPaired(String key, String label, String unit, List<Double> samples) {
        if (!prefix.isEmpty()) {
            report.add(prefix + key, label + " [RAM copied: the QEMU 7.2 path]", unit, samples, null);
        } else {
            report.add(key, label, unit, samples, report.has(COPY + key) ? COPY + key : null);
        }
    }

    // ---- (a) template start vs cold boot ----

    private void starts() throws Exception {
        int n = args.integer("n", 1);
        // The first template start builds the template: a warm-up, reported on its own.
        double[] first = startOnce(warm);
        report.add("template.first", "first start: build template + restore + exec", "ms", List.of(first[0]), null);
        List<Double> coldTotal = new ArrayList<>();
        List<Double> warmTotal = new ArrayList<>();
        List<Double> warmCreate = new ArrayList<>();
        List<Double> warmStart = new ArrayList<>();
        List<Double> warmExec = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            double[] c = startOnce(cold);
            double[] w = startOnce(warm);
            BenchEnv.LOG.step(String.format(
                    "start %d/%d: cold %.0f ms; template %.0f ms (create %.0f, restore %.0f, exec %.0f)",
                    i + 1, n, c[0], w[0], w[1], w[2], w[3]));
            coldTotal.add(c[0]);
            warmTotal.add(w[0]);
            warmCreate.add(w[1]);
            warmStart.add(w[2]);
            warmExec.add(w[3]);
        }
        report.add("cold.total", "cold boot: create+start+exec true", "ms", coldTotal, null);
        report.add("template.total", "template start: create+start+exec true", "ms", warmTotal, "cold.total");
        report.add("template.create", "  create (record + layer)", "ms", warmCreate, null);
        report.add("template.start", "  start (copy layer, restore, identity)", "ms", warmStart, null);
        report.add("template.exec", "  first exec (connect + exec true)", "ms", warmExec, null);
    }

    /** create + start + first exec: total, create, start, exec, then a second exec, in milliseconds. */
    private double[] startOnce(SandboxEngine engine) throws Exception {
        long t0 = System.nanoTime();
        Sandbox s = engine.create(options("start"));
        sandboxes.add(s.name());
        long t1 = System.nanoTime();
        try {
            s = engine.start(s.name());
            long t2 = System.nanoTime();
            exec(engine, s);
            long t3 = System.nanoTime();
            exec(engine, s);
            long t4 = System.nanoTime();
            return new double[] {ms(t3 - t0), ms(t1 - t0), ms(t2 - t1), ms(t3 - t2), ms(t4 - t3)};
        } finally {
            remove(s.name());
        }
    }

    // ---- (a2) warm pool ----

    /**
     * Claim from a warm pool of one (refilled after each claim, waited for before the next) to the
     * first exec; beside each step's wall time the pooled QEMU's CPU time, which a loaded host
     * moves less than the wall time.
     */
    private void pool() throws Exception {
        int n = args.integer("n", 1);
        long pause = args.integer("pool-pause-ms", 0);
        SandboxEngine pooled = HostBackends.engine(env.dirs, BenchEnv.LOG, true);
        HostBackends.microvm(pooled).enableWarmPool(1, 4096);
        try {
            startOnce(pooled); // the template start that fills the pool
            List<Double> total = new ArrayList<>();
            List<Double> claim = new ArrayList<>();
            List<Double> first = new ArrayList<>();
            List<Double> second = new ArrayList<>();
            List<Double> claimCpu = new ArrayList<>();
            List<Double> firstCpu = new ArrayList<>();
            List<Double> secondCpu = new ArrayList<>();
            List<Double> firstJit = new ArrayList<>();
            List<Double> secondJit = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                HostBackends.microvm(pooled).awaitWarmPool(TIMEOUT);
                long pid = pooledVmmPid();
                long c0 = SandboxBench.cpuNanos(pid);
                long t0 = System.nanoTime();
                Sandbox s = pooled.create(options("start"));
                sandboxes.add(s.name());
                try {
                    s = pooled.start(s.name());
                    long tc = System.nanoTime();
                    long cc = SandboxBench.cpuNanos(pid);
                    // --pool-pause-ms: idle time before each exec, left out of every figure; an
                    // exec after a pause shows what an exec after the pooled VM's wait pays
                    if (pause > 0) {
                        Thread.sleep(pause);
                    }
                    long t1 = System.nanoTime();
                    long c1 = SandboxBench.cpuNanos(pid);
                    long j1 = SandboxBench.jitNanos();
                    exec(pooled, s);
                    long t2 = System.nanoTime();
                    long c2 = SandboxBench.cpuNanos(pid);
                    long j2 = SandboxBench.jitNanos();
                    long s2 = t2;
                    long cs2 = c2;
                    if (pause > 0) {
                        Thread.sleep(pause);
                        s2 = System.nanoTime();
                        cs2 = SandboxBench.cpuNanos(pid);
                    }
                    exec(pooled, s);
                    long t3 = System.nanoTime();
                    long c3 = SandboxBench.cpuNanos(pid);
                    long j3 = SandboxBench.jitNanos();
                    total.add(ms(tc - t0 + t2 - t1));
                    claim.add(ms(tc - t0));
                    first.add(ms(t2 - t1));
                    second.add(ms(t3 - s2));
                    claimCpu.add(ms(cc - c0));
                    firstCpu.add(ms(c2 - c1));
                    secondCpu.add(ms(c3 - cs2));
                    firstJit.add(ms(j2 - j1));
                    secondJit.add(ms(j3 - j2));
                    BenchEnv.LOG.step(String.format(
                            "claim %d/%d: %.1f ms (claim %.1f, first exec %.1f, second %.1f); QEMU CPU %.1f / %.1f / %.1f ms;"
                                    + " this JVM's JIT during the execs %.1f / %.1f ms",
                            i + 1,
                            n,
                            ms(tc - t0 + t2 - t1),
                            ms(tc - t0),
                            ms(t2 - t1),
                            ms(t3 - s2),
                            ms(cc - c0),
                            ms(c2 - c1),
                            ms(c3 - cs2),
                            ms(j2 - j1),
                            ms(j3 - j2)));
                } finally {
                    remove(s.name());
                }
            }
            // against the template start when the starts section ran too
            report.add(
                    "pool.total",
                    "warm-pool claim: create+start+exec true",
                    "ms",
                    total,
                    report.has("template.total") ? "template.total" : null);
            report.add("pool.claim", "  create + start (claim, identity)", "ms", claim, null);
            report.add("pool.exec2", "  a second exec on the same sandbox (connect + exec true)", "ms", second, null);
            report.add("pool.exec", "  first exec (connect + exec true)", "ms", first, "pool.exec2");
            report.add("pool.claim.cpu", "  the pooled QEMU's CPU during the claim", "ms", claimCpu, null);
            report.add("pool.exec2.cpu", "  its CPU during the second exec", "ms", secondCpu, null);
            report.add("pool.exec.cpu", "  its CPU during the first exec", "ms", firstCpu, "pool.exec2.cpu");
            report.add("pool.exec2.jit", "  this JVM's JIT compiler CPU during the second exec", "ms", secondJit, null);
            report.add("pool.exec.jit", "  ... during the first exec", "ms", firstJit, "pool.exec2.jit");
        } finally {
            HostBackends.microvm(pooled).closeWarmPool(TIMEOUT);
        }
    }

    // ---- (a3) an exec after idleness, leg by leg ----

    /**
     * One template-started sandbox; rounds alternate between no pause and --pool-pause-ms (300 when
     * unset) of idleness before an exec, and time its legs: the engine's look-up, the connect with
     * its HELLO round trip, the exec of {@code true}, the close; then the same after a pause on a
     * session kept open across it (no connect), so the connect's part and the exec's part of an
     * exec after idleness can be told apart; and a claim's identity message after the same pause.
     */
    private void wake() throws Exception {
        int n = args.integer("n", 1);
        long pauseArg = args.integer("pool-pause-ms", 0);
        long pause = pauseArg > 0 ? pauseArg : 300;
        Sandbox s = warm.start(warm.create(options("wake")).name());
        sandboxes.add(s.name());
        long pid = warm.inspect(s.name()).vmmPid();
        exec(warm, s);
        exec(warm, s);
        String[] legs = {"look-up", "connect+HELLO", "exec true", "close", "open-session exec", "open-session identity"
        };
        Map<String, List<Double>> wall = new LinkedHashMap<>();
        Map<String, List<Double>> cpu = new LinkedHashMap<>();
        try {
            for (int i = 0; i < 2 * n; i++) {
                long p = i % 2 == 0 ? 0 : pause;
                String tag = p == 0 ? "hot" : "after " + p + " ms";
                long[] t = new long[7];
                long[] c = new long[7];
                if (p > 0) {
                    Thread.sleep(p);
                }
                t[0] = System.nanoTime();
                c[0] = SandboxBench.cpuNanos(pid);
                Sandbox rec = warm.inspect(s.name());
                t[1] = System.nanoTime();
                c[1] = SandboxBench.cpuNanos(pid);
                GuestChannel ch = warm.connect(rec, TIMEOUT);
                try (ch) {
                    t[2] = System.nanoTime();
                    c[2] = SandboxBench.cpuNanos(pid);
                    run(ch, s);
                    t[3] = System.nanoTime();
                    c[3] = SandboxBench.cpuNanos(pid);
                }
                t[4] = System.nanoTime();
                c[4] = SandboxBench.cpuNanos(pid);
                long[] openExec = afterPause(rec, p, pid, open -> run(open, s));
                // what a claim sends (hostname, machine-id, entropy, clock), after the same pause
                long[] identity =
                        afterPause(rec, p, pid, open -> open.setIdentity(GuestIdentity.fresh(s.name()), TIMEOUT));
                t[5] = openExec[0];
                c[5] = openExec[1];
                t[6] = identity[0];
                c[6] = identity[1];
                StringBuilder line = new StringBuilder(String.format("wake %d/%d %s:", i / 2 + 1, n, tag));
                for (int k = 0; k < legs.length; k++) {
                    double w = k < 4 ? ms(t[k + 1] - t[k]) : ms(t[k + 1]);
                    double q = k < 4 ? ms(c[k + 1] - c[k]) : ms(c[k + 1]);
                    wall.computeIfAbsent(tag + ": " + legs[k], x -> new ArrayList<>())
                            .add(w);
                    cpu.computeIfAbsent(tag + ": " + legs[k], x -> new ArrayList<>())
                            .add(q);
                    line.append(String.format(" %s %.1f ms (QEMU %.1f)", legs[k], w, q));
                }
                BenchEnv.LOG.step(line.toString());
            }
        } finally {
            remove(s.name());
        }
        int k = 0;
        for (Map.Entry<String, List<Double>> e : wall.entrySet()) {
            String id = "wake." + k++;
            report.add(id, e.getKey(), "ms", e.getValue(), null);
            report.add(id + ".cpu", "  the QEMU's CPU in it", "ms", cpu.getOrDefault(e.getKey(), List.of()), null);
        }
    }

    private interface SessionStep {
        void run(GuestChannel ch) throws Exception;
    }

    /**
     * Opens a session, idles {@code pause} ms on it, then runs the step: its wall time and the
     * QEMU's CPU during it, in nanoseconds.
     */
    private long[] afterPause(Sandbox rec, long pause, long pid, SessionStep step) throws Exception {
        try (GuestChannel open = warm.connect(rec, TIMEOUT)) {
            if (pause > 0) {
                Thread.sleep(pause);
            }
            long a = System.nanoTime();
            long ac = SandboxBench.cpuNanos(pid);
            step.run(open);
            return new long[] {System.nanoTime() - a, SandboxBench.cpuNanos(pid) - ac};
        }
    }

    private static void run(GuestChannel ch, Sandbox s) throws IOException, InterruptedException {
        ExitStatus st = ch.exec(ExecSpec.of("true"), DISCARD, DISCARD).await();
        if (st.exitCode() != 0) {
            throw new IllegalStateException("true failed in " + s.name() + ": " + st);
        }
    }

    /** The QEMU process of the one ready VM of a pool of one (a pooled VM has no record yet). */
    private long pooledVmmPid() throws IOException {
        List<Path> ready = WarmPool.leftovers(env.dirs.sandboxes());
        if (ready.size() != 1) {
            throw new IllegalStateException("expected one pooled VM, found " + ready.size());
        }
        return Long.parseLong(Files.readString(ready.get(0).resolve("vmm.pid")).strip());
    }

    // ---- (b) fork ----

    private void forks() throws Exception {
        int k = args.integer("forks", 1);
        int runs = args.integer("fork-runs", 1);
        Sandbox src = warm.start(warm.create(options("fork-src")).name());
        sandboxes.add(src.name());
        exec(warm, src);
        List<Double> total = new ArrayList<>();
        List<Double> forkOnly = new ArrayList<>();
        List<Double> sourceCpu = new ArrayList<>();
        List<Double> cloneCpu = new ArrayList<>();
        long srcPid = warm.inspect(src.name()).vmmPid();
        for (int r = 0; r < runs + 1; r++) {
            List<String> names = names(src.name() + "-r" + r, k);
            sandboxes.addAll(names);
            long ticks0 = SandboxBench.cpuTicks(srcPid);
            long t0 = System.nanoTime();
            List<Sandbox> clones = warm.fork(src.name(), names);
            long t1 = System.nanoTime();
            // The source's QEMU works only for the save while the fork call runs (its guest idles).
            long sourceTicks = SandboxBench.cpuTicks(srcPid) - ticks0;
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<Object>> all = new ArrayList<>();
                for (Sandbox c : clones) {
                    all.add(pool.submit(() -> {
                        exec(warm, c);
                        return c;
                    }));
                }
                for (Future<Object> f : all) {
                    f.get();
                }
            }
            long t2 = System.nanoTime();
            // A clone's QEMU CPU from its launch to its first exec's answer: restore, identity,
            // and under TCG the translation of every guest path it runs (none is shared).
            long cloneTicks = 0;
            for (Sandbox c : clones) {
                cloneTicks += SandboxBench.cpuTicks(warm.inspect(c.name()).vmmPid());
            }
            BenchEnv.LOG.step(String.format(
                    "%s: fork x%d %.0f ms, all answered exec after %.0f ms; source QEMU CPU %d ms, clones' %d ms",
                    r == 0 ? "warm-up fork" : "fork " + r + "/" + runs,
                    k,
                    ms(t1 - t0),
                    ms(t2 - t0),
                    sourceTicks * 10,
                    cloneTicks * 10));
            if (r > 0) {
                forkOnly.add(ms(t1 - t0));
                total.add(ms(t2 - t0));
                sourceCpu.add(sourceTicks * 10.0);
                cloneCpu.add(cloneTicks * 10.0 / k);
            }
            names.forEach(this::remove);
        }
        addPaired("fork.total", "fork x" + k + " until all answer exec", "ms", total);
        addPaired("fork.restore", "  fork call (save, convert, restore " + k + ")", "ms", forkOnly);
        addPaired("fork.source.cpu", "  the source QEMU's CPU during the fork call (its save)", "ms", sourceCpu);
        addPaired("fork.clone.cpu", "  one clone's QEMU CPU, launch to its first exec's answer", "ms", cloneCpu);
        int cores = Runtime.getRuntime().availableProcessors();
        report.note(String.format(
                "fork CPU floor: %d clones x %.0f ms of QEMU CPU each / %d cores = %.0f ms, before the save and the"
                        + " device-state step",
                k, Stats.of(cloneCpu).median(), cores, k * Stats.of(cloneCpu).median() / cores));
        remove(src.name());
    }

    // ---- (c) memory ----

    private void memory() throws Exception {
        int k = args.integer("idle", 2);
        List<Sandbox> idle = new ArrayList<>();
        List<Double> sums = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            Sandbox s = warm.start(warm.create(options("idle")).name());
            sandboxes.add(s.name());
            exec(warm, s);
            idle.add(s);
        }
        double one = settledPss(idle.subList(0, 1));
        double all = settledPss(idle);
        double perSandbox = (all - one) / (k - 1);
        sums.add(one);
        sums.add(all);
        // Fork the first idle sandbox k times: the memory those clones add.
        List<String> names = names("idle-fork", k);
        sandboxes.addAll(names);
        double sourceBefore = settledPss(idle.subList(0, 1));
        List<Sandbox> clones = warm.fork(idle.getFirst().name(), names);
        for (Sandbox c : clones) {
            exec(warm, c);
        }
        List<Sandbox> withClones = new ArrayList<>(idle);
        withClones.addAll(clones);
        double forked = settledPss(withClones);
        double perFork = (forked - all) / k;
        double clonesOnly = settledPss(clones) / k;
        Map<String, Double> parts =
                pssByKind(warm.inspect(clones.getFirst().name()).vmmPid(), idle.getFirst());
        double source = settledPss(idle.subList(0, 1));
        addPaired("mem.template", "marginal PSS per idle template-started sandbox", "MiB", List.of(perSandbox));
        addPaired("mem.fork", "marginal PSS per idle fork", "MiB", List.of(perFork));
        addPaired("mem.fork.clone", "  PSS of one idle clone", "MiB", List.of(clonesOnly));
        for (Map.Entry<String, Double> part : parts.entrySet()) {
            addPaired(
                    "mem.fork.clone."
                            + part.getKey().toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z]+", "-"),
                    "    of which " + part.getKey(),
                    "MiB",
                    List.of(part.getValue()));
        }
        addPaired("mem.fork.source.before", "  PSS of the source just before the fork", "MiB", List.of(sourceBefore));
        addPaired("mem.fork.source", "  PSS of the forked source afterwards", "MiB", List.of(source));
        addPaired(
                "mem.first",
                "PSS of the first template-started sandbox (template pages all its own)",
                "MiB",
                List.of(one));
        report.note(String.format(
                "memory: sum of QEMU PSS, read once the VMs were idle: 1 sandbox %.1f MiB, %d sandboxes %.1f MiB,"
                        + " + %d clones of the first %.1f MiB; marginal = difference / count",
                one, k, all, k, forked));
        names.forEach(this::remove);
        idle.forEach(s -> remove(s.name()));
    }

    /**
     * Where one QEMU's PSS goes, from /proc/PID/smaps: TCG's translated code (its code buffer,
     * the one anonymous executable mapping), the guest's RAM (the mapping as long as the guest's
     * memory), QEMU's heap and other anonymous memory (threads' stacks and arenas, device state),
     * and QEMU's binary and libraries (their relocated, so private, pages and a share of the rest).
     */
    private static Map<String, Double> pssByKind(long pid, Sandbox like) throws IOException {
        long ramKiB = (long) like.resources().memoryMiB() << 10;
        Map<String, Double> kib = new LinkedHashMap<>();
        for (String k :
                List.of("TCG translated code", "guest RAM", "QEMU heap and anonymous", "QEMU binary and libraries")) {
            kib.put(k, 0.0);
        }
        String kind = "";
        for (String line :
                java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc", Long.toString(pid), "smaps"))) {
            String[] f = line.split("\\s+", 6);
            if (f.length >= 5 && f[0].matches("[0-9a-f]+-[0-9a-f]+")) {
                String[] range = f[0].split("-");
                long sizeKiB = (Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16)) >> 10;
                String name = f.length == 6 ? f[5].strip() : "";
                boolean file = name.startsWith("/");
                kind = file && sizeKiB == ramKiB
                        ? "guest RAM"
                        : file
                                ? "QEMU binary and libraries"
                                : name.isEmpty() && f[1].contains("x")
                                        ? "TCG translated code"
                                        : name.isEmpty() || name.equals("[heap]") || name.startsWith("[stack")
                                                ? "QEMU heap and anonymous"
                                                : "";
            } else if (line.startsWith("Pss:") && !kind.isEmpty()) {
                kib.merge(kind, (double) Long.parseLong(line.replaceAll("[^0-9]", "")), Double::sum);
            }
        }
        Map<String, Double> mib = new LinkedHashMap<>();
        kib.forEach((k, v) -> mib.put(k, v / 1024.0));
        return mib;
    }

    private double settledPss(List<Sandbox> list) throws Exception {
        List<Long> pids =
                list.stream().map(s -> warm.inspect(s.name()).vmmPid()).toList();
        SandboxBench.awaitIdle(pids, Duration.ofSeconds(30), 10, new ArrayList<>());
        double sum = 0;
        for (long pid : pids) {
            sum += SandboxBench.smapsRollup(pid).getOrDefault("Pss", 0L) / 1024.0;
        }
        return sum;
    }

    // ---- (d) many ----

    private void many() throws Exception {
        int many = args.integer("many", 1);
        int parallel = args.integer("parallel", 1);
        List<Double> each = new java.util.concurrent.CopyOnWriteArrayList<>();
        long t0 = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(parallel)) {
            List<Future<Object>> all = new ArrayList<>();
            for (int i = 0; i < many; i++) {
                all.add(pool.submit(() -> {
                    long t = System.nanoTime();
                    Sandbox s = warm.create(options("many"));
                    try {
                        s = warm.start(s.name());
                        exec(warm, s);
                    } finally {
                        warm.remove(s.name(), true);
                    }
                    each.add(ms(System.nanoTime() - t));
                    return s;
                }));
            }
            for (Future<Object> f : all) {
                f.get();
            }
        }
        double total = ms(System.nanoTime() - t0);
        report.add(
                "many.total",
                many + " sandboxes: create+start+exec+rm, " + parallel + " at a time",
                "ms",
                List.of(total),
                null);
        report.add("many.each", "  one sandbox's create+start+exec+rm", "ms", each, null);
    }

    // ---- (e) pause/resume ----

    private void pauses() throws Exception {
        int runs = args.integer("pause-runs", 1);
        Sandbox s = warm.start(warm.create(options("pause")).name());
        sandboxes.add(s.name());
        exec(warm, s);
        List<Double> pause = new ArrayList<>();
        List<Double> resume = new ArrayList<>();
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            warm.pause(s.name());
            long t1 = System.nanoTime();
            Sandbox r = warm.resume(s.name());
            exec(warm, r);
            long t2 = System.nanoTime();
            pause.add(ms(t1 - t0));
            resume.add(ms(t2 - t1));
        }
        report.add("pause", "pause (save memory + devices, end VMM)", "ms", pause, null);
        report.add("resume", "resume until exec answers", "ms", resume, null);
        remove(s.name());
    }

    // ---- helpers ----

    private static void exec(SandboxEngine engine, Sandbox s) throws IOException, InterruptedException {
        try (GuestChannel ch = engine.connect(engine.inspect(s.id()), TIMEOUT)) {
            ExitStatus st = ch.exec(ExecSpec.of("true"), DISCARD, DISCARD).await();
            if (st.exitCode() != 0) {
                throw new IllegalStateException("true failed in " + s.name() + ": " + st);
            }
        }
    }

    private List<String> names(String prefix, int k) {
        return IntStream.rangeClosed(1, k).mapToObj(i -> prefix + "-" + i).toList();
    }

    private synchronized CreateOptions options(String what) {
        return CreateOptions.builder()
                .name("bench-" + what + "-" + counter++)
                .runtime("microvm")
                .build();
    }

    private void remove(String name) {
        try {
            warm.remove(name, true);
        } catch (RuntimeException e) {
            // Already gone (removed by its own step).
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

    private static double ms(long nanos) {
        return nanos / 1e6;
    }
}
