package dev.airlock.bench;

import dev.airlock.client.DaemonClient;
import dev.airlock.daemon.Daemon;
import dev.airlock.daemon.HostBackends;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestChannelClosedException;
import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxStats;
import dev.airlock.service.ExecRequest;
import dev.airlock.service.ExecResult;
import dev.airlock.vmm.VmSpec;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * The sandbox figures: (a) cold start through the engine (create + start + first exec of
 * {@code true}) against the bare VMM's launch-to-init of the same kernel, initramfs and disks,
 * alternating; (b) exec and ping round trips on a running sandbox; (c) stdout and stdin
 * throughput over the agent channel against the same bytes piped inside the guest; (d) host
 * memory (PSS and RSS of the QEMU process) per idle sandbox against an idle bare VM.
 */
public final class SandboxBench {
    private static final Duration TIMEOUT = Duration.ofSeconds(180);
    private static final Duration RETRY_PAUSE = Duration.ofMillis(250);
    private static final OutputStream DISCARD = OutputStream.nullOutputStream();

    private final Args args;
    private final BenchEnv env;
    private final SandboxEngine engine;
    private final Report report;
    private final List<String> sandboxes = new ArrayList<>();
    private final List<String> reconnects = new ArrayList<>();
    private int connects;
    private int counter;

    private SandboxBench(Args args, BenchEnv env) {
        this.args = args;
        this.env = env;
        // Cold boots: template starts are measured against these in bench/snapshot.sh.
        this.engine = HostBackends.engine(env.dirs, BenchEnv.LOG, false);
        this.report = new Report("sandbox").host(env.hostInfo()).config(args.effective());
        env.onClose(this::removeAll);
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/sandbox.sh [flags]")
                .flag("n", 10, "measured cold starts (and as many bare boots)")
                .flag("warmup", 1, "discarded cold starts and bare boots first")
                .flag("execs", 200, "measured exec round trips of 'true' (and as many pings)")
                .flag("sessions", 30, "measured connect + exec + close round trips")
                .flag("daemon", 1, "1: also the exec through airlockd (its mux and HTTP); 0: skip it")
                .flag("stream-mb", 200, "megabytes (10^6 bytes) per throughput run")
                .flag("stream-runs", 3, "measured runs per throughput figure (one smaller warm-up first)")
                .flag("sandboxes", 3, "idle sandboxes for the memory figure")
                .flag("idle-timeout", 60, "seconds to wait for the VMs to go idle before reading memory")
                .flag("idle-cpu", 10, "a VM is idle below this CPU use, in percent of one core")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        try (BenchEnv env = BenchEnv.open()) {
            new SandboxBench(args, env).run();
        }
    }

    private void run() throws Exception {
        coldStart();
        roundTrips();
        memory();
        if (!reconnects.isEmpty()) {
            report.note(reconnects.size() + " of " + connects + " new agent sessions failed their HELLO and were"
                    + " retried after " + RETRY_PAUSE.toMillis() + " ms (the time is included): "
                    + reconnects.getFirst());
        }
        report.extra("sessionRetries", Map.of("sessions", connects, "failedHellos", reconnects.size()));
        report.print(System.out);
        System.out.println("\nresult: " + report.write(env.resultsDir(args)));
    }

    // ---- (a) cold start ----

    private void coldStart() throws Exception {
        int n = args.integer("n", 1);
        int warmup = args.integer("warmup", 0);
        List<Double> total = new ArrayList<>();
        List<Double> create = new ArrayList<>();
        List<Double> start = new ArrayList<>();
        List<Double> exec = new ArrayList<>();
        List<Double> bare = new ArrayList<>();
        for (int i = 0; i < warmup + n; i++) {
            boolean keep = i >= warmup;
            double[] c = coldOnce();
            double b = bareAgentBoot();
            BenchEnv.LOG.step(String.format(
                    "%s: cold start %.0f ms (create %.0f, start %.0f, exec %.0f); bare VMM %.0f ms",
                    keep ? "cold " + (i - warmup + 1) + "/" + n : "warm-up " + (i + 1) + "/" + warmup,
                    c[0],
                    c[1],
                    c[2],
                    c[3],
                    b));
            if (keep) {
                total.add(c[0]);
                create.add(c[1]);
                start.add(c[2]);
                exec.add(c[3]);
                bare.add(b);
            }
        }
        report.add("bare.boot", "bare VMM: launch -> init ready", "ms", bare, null);
        report.add("cold.total", "cold start: create+start+exec true", "ms", total, "bare.boot");
        report.add("cold.create", "  create (record + mkfs layer)", "ms", create, null);
        report.add("cold.start", "  start (launch, boot, agent HELLO)", "ms", start, null);
        report.add("cold.exec", "  first exec (connect + exec true)", "ms", exec, null);
    }

    /** One engine cold start: total, create, start, first exec, in milliseconds. */
    private double[] coldOnce() throws Exception {
        long t0 = System.nanoTime();
        Sandbox s = engine.create(options("cold"));
        sandboxes.add(s.name());
        long t1 = System.nanoTime();
        try {
            s = engine.start(s.name());
            long t2 = System.nanoTime();
            try (GuestChannel ch = connect(s)) {
                run(ch, ExecSpec.of("true"));
            }
            long t3 = System.nanoTime();
            return new double[] {ms(t3 - t0), ms(t1 - t0), ms(t2 - t1), ms(t3 - t2)};
        } finally {
            remove(s.name());
        }
    }

    /**
     * The bare VMM: the engine's own QEMU command line for the same kernel, agent initramfs, base
     * image and a fresh layer, in the foreground, timed from spawn to the console's ready line.
     */
    private double bareAgentBoot() throws InterruptedException {
        Path dir = env.newDir("bare");
        try {
            VmSpec spec = env.agentSpec(
                    dir,
                    BenchEnv.newLayer(dir.resolve("layer.ext4"), Resources.DEFAULT.diskMiB()),
                    Resources.DEFAULT.memoryMiB(),
                    true);
            try (QemuProcess q = QemuProcess.launch(
                    QemuProcess.foreground(env.qemu.commandLine(spec)),
                    "airlock-init: ready",
                    dir.resolve("qemu.stderr"))) {
                return q.awaitReady(TIMEOUT).millis();
            }
        } finally {
            HostFiles.deleteTree(dir);
        }
    }

    // ---- (b) and (c): one running sandbox ----

    private void roundTrips() throws Exception {
        int execs = args.integer("execs", 1);
        int sessions = args.integer("sessions", 1);
        Sandbox s = engine.start(engine.create(options("hot")).name());
        sandboxes.add(s.name());
        BenchEnv.LOG.step(
                "round trips on " + s.name() + ": " + execs + " execs, " + execs + " pings, " + sessions + " sessions");
        try (GuestChannel ch = connect(s)) {
            int warm = Math.max(10, execs / 10);
            List<Double> ping = new ArrayList<>();
            for (int i = 0; i < warm + execs; i++) {
                double d = ch.ping().toNanos() / 1e6;
                if (i >= warm) {
                    ping.add(d);
                }
            }
            List<Double> exec = new ArrayList<>();
            for (int i = 0; i < warm + execs; i++) {
                long t = System.nanoTime();
                run(ch, ExecSpec.of("true"));
                if (i >= warm) {
                    exec.add(ms(System.nanoTime() - t));
                }
            }
            report.add("ping", "ping round trip", "ms", ping, null);
            report.add("exec", "exec 'true' round trip (open session)", "ms", exec, "ping");
        }
        List<Double> session = new ArrayList<>();
        for (int i = 0; i < 3 + sessions; i++) {
            long t = System.nanoTime();
            try (GuestChannel ch = connect(s)) {
                run(ch, ExecSpec.of("true"));
            }
            if (i >= 3) {
                session.add(ms(System.nanoTime() - t));
            }
        }
        report.add("exec.session", "connect + HELLO + exec 'true' + close", "ms", session, "exec");
        if (args.integer("daemon", 0) != 0) {
            throughTheDaemon(s, execs);
        }
        try (GuestChannel ch = connect(s)) {
            throughput(ch);
        }
        remove(s.name());
    }

    /**
     * The same exec through airlockd, as clients use it: over the daemon's shared agent socket
     * (the CLI's path) and as one HTTP request to {@code POST /v1/sandboxes/NAME/exec}.
     */
    private void throughTheDaemon(Sandbox s, int execs) throws Exception {
        Daemon daemon = new Daemon(env.dirs);
        Thread serving = Thread.ofPlatform().daemon().name("bench-airlockd").start(() -> {
            try {
                daemon.run();
            } catch (Exception e) {
                BenchEnv.LOG.step("daemon stopped: " + e.getMessage());
            }
        });
        DaemonClient client = DaemonClient.connect(env.dirs);
        try {
            int warm = Math.max(10, execs / 10);
            List<Double> mux = new ArrayList<>();
            try (GuestChannel ch = client.session(s.name()).channel()) {
                for (int i = 0; i < warm + execs; i++) {
                    long t = System.nanoTime();
                    run(ch, ExecSpec.of("true"));
                    if (i >= warm) {
                        mux.add(ms(System.nanoTime() - t));
                    }
                }
            }
            report.add("exec.daemon", "exec 'true' in a session through airlockd (the CLI's path)", "ms", mux, "exec");
            List<Double> rest = new ArrayList<>();
            ExecRequest req = new ExecRequest(List.of("true"), null, null, null, null, null);
            for (int i = 0; i < warm + execs / 4; i++) {
                long t = System.nanoTime();
                ExecResult r = client.exec(s.name(), req);
                if (r.exitCode() != 0) {
                    throw new IllegalStateException("exec through the API failed: " + r);
                }
                if (i >= warm) {
                    rest.add(ms(System.nanoTime() - t));
                }
            }
            report.add("exec.api", "exec 'true' as one HTTP request (POST .../exec)", "ms", rest, "exec");
        } finally {
            daemon.shutdown();
            serving.join(Duration.ofSeconds(10));
        }
    }

    private void throughput(GuestChannel ch) throws Exception {
        long bytes = args.integer("stream-mb", 1) * 1_000_000L;
        int runs = args.integer("stream-runs", 1);
        BenchEnv.LOG.step("throughput: " + runs + " runs of " + bytes / 1_000_000 + " MB each way, and in-guest");
        List<Double> producer = new ArrayList<>();
        List<Double> inGuest = new ArrayList<>();
        List<Double> stdout = new ArrayList<>();
        List<Double> stdin = new ArrayList<>();
        for (int i = 0; i < runs + 1; i++) {
            // The first round is a warm-up at a tenth of the size.
            long size = i == 0 ? Math.max(1, bytes / 10) : bytes;
            double alone = mbps(size, inGuest(ch, "head -c " + size + " /dev/zero >/dev/null"));
            double local = mbps(size, inGuest(ch, "head -c " + size + " /dev/zero | cat >/dev/null"));
            double out = mbps(size, stdoutStream(ch, size));
            double in = mbps(size, stdinStream(ch, size));
            BenchEnv.LOG.step(String.format(
                    "%s: in-guest head %.1f MB/s, pipe %.1f MB/s; stdout %.1f MB/s, stdin %.1f MB/s",
                    i == 0 ? "warm-up" : "run " + i + "/" + runs, alone, local, out, in));
            if (i > 0) {
                producer.add(alone);
                inGuest.add(local);
                stdout.add(out);
                stdin.add(in);
            }
        }
        report.add("stream.head", "in guest: head -c N /dev/zero >/dev/null", "MB/s", producer, null);
        report.add("stream.pipe", "in guest: head -c N /dev/zero | cat", "MB/s", inGuest, null);
        report.add("stream.stdout", "stdout to host: head -c N /dev/zero", "MB/s", stdout, "stream.head");
        report.add("stream.stdin", "stdin from host: cat >/dev/null", "MB/s", stdin, "stream.pipe");
    }

    /** Seconds for a shell command that moves the bytes inside the guest only, as one exec. */
    private static double inGuest(GuestChannel ch, String command) throws Exception {
        long t = System.nanoTime();
        run(ch, ExecSpec.of("sh", "-c", command));
        return (System.nanoTime() - t) / 1e9;
    }

    private static double stdoutStream(GuestChannel ch, long bytes) throws Exception {
        AtomicLong count = new AtomicLong();
        OutputStream counter = new OutputStream() {
            @Override
            public void write(int b) {
                count.incrementAndGet();
            }

            @Override
            public void write(byte[] b, int off, int len) {
                count.addAndGet(len);
            }
        };
        long t = System.nanoTime();
        Execution ex = ch.exec(ExecSpec.of("head", "-c", Long.toString(bytes), "/dev/zero"), counter, DISCARD);
        check(ex.await(), "head");
        double seconds = (System.nanoTime() - t) / 1e9;
        if (count.get() != bytes) {
            throw new IllegalStateException("stdout carried " + count.get() + " bytes, not " + bytes);
        }
        return seconds;
    }

    private static double stdinStream(GuestChannel ch, long bytes) throws Exception {
        byte[] chunk = new byte[64 * 1024];
        long t = System.nanoTime();
        Execution ex = ch.exec(
                ExecSpec.builder("sh", "-c", "cat >/dev/null").stdin(true).build(), DISCARD, DISCARD);
        try (OutputStream in = ex.stdin()) {
            for (long left = bytes; left > 0; ) {
                int n = (int) Math.min(chunk.length, left);
                in.write(chunk, 0, n);
                left -= n;
            }
        }
        check(ex.await(), "cat");
        return (System.nanoTime() - t) / 1e9;
    }

    // ---- (d) memory ----

    private void memory() throws Exception {
        int k = args.integer("sandboxes", 1);
        BenchEnv.LOG.step("memory: starting " + k + " sandboxes and one bare VM");
        List<Sandbox> idle = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            Sandbox s = engine.create(options("idle"));
            sandboxes.add(s.name());
            idle.add(engine.start(s.name()));
        }
        Path dir = env.newDir("bare-idle");
        VmSpec spec = env.agentSpec(
                dir,
                BenchEnv.newLayer(dir.resolve("layer.ext4"), Resources.DEFAULT.diskMiB()),
                Resources.DEFAULT.memoryMiB(),
                true);
        try (QemuProcess bare = QemuProcess.launch(
                QemuProcess.foreground(env.qemu.commandLine(spec)),
                "airlock-init: ready",
                dir.resolve("qemu.stderr"))) {
            bare.awaitReady(TIMEOUT);
            List<Long> pids = new ArrayList<>(idle.stream().map(Sandbox::vmmPid).toList());
            pids.add(bare.pid());
            List<Double> cpu = new ArrayList<>();
            double waited = awaitIdle(
                    pids, Duration.ofSeconds(args.integer("idle-timeout", 1)), args.integer("idle-cpu", 1), cpu);
            List<Double> pss = new ArrayList<>();
            List<Double> rss = new ArrayList<>();
            for (Sandbox s : idle) {
                SandboxStats st = engine.stats(s.name());
                pss.add(st.vmmPssBytes() / 1048576.0);
                rss.add(st.vmmRssBytes() / 1048576.0);
            }
            Map<String, Long> b = smapsRollup(bare.pid());
            report.add(
                    "mem.bare.pss", "bare VM idle: QEMU PSS", "MiB", List.of(b.getOrDefault("Pss", 0L) / 1024.0), null);
            report.add(
                    "mem.bare.rss", "bare VM idle: QEMU RSS", "MiB", List.of(b.getOrDefault("Rss", 0L) / 1024.0), null);
            report.add("mem.pss", "idle sandbox: QEMU PSS", "MiB", pss, "mem.bare.pss");
            report.add("mem.rss", "idle sandbox: QEMU RSS", "MiB", rss, "mem.bare.rss");
            report.note(String.format(
                    "memory read %s after the last VM booted (%d sandboxes + 1 bare VM, %d MiB guests each);"
                            + " CPU use of each VMM in the last second, %% of a core: %s",
                    waited < 0 ? "without reaching idle" : String.format("%.0f s, once all were idle,", waited),
                    k,
                    Resources.DEFAULT.memoryMiB(),
                    cpu));
        } finally {
            HostFiles.deleteTree(dir);
        }
        idle.forEach(s -> remove(s.name()));
    }

    /**
     * Waits until every process used under {@code percent} of a CPU in each of two consecutive
     * seconds; returns the seconds waited, or -1 on timeout. {@code lastCpu} gets the last
     * second's use of each process.
     */
    static double awaitIdle(List<Long> pids, Duration timeout, int percent, List<Double> lastCpu)
            throws InterruptedException {
        long t0 = System.nanoTime();
        long[] last = pids.stream().mapToLong(SandboxBench::cpuTicks).toArray();
        int quietSeconds = 0;
        while (System.nanoTime() - t0 < timeout.toNanos()) {
            Thread.sleep(1000);
            boolean allQuiet = true;
            lastCpu.clear();
            for (int i = 0; i < pids.size(); i++) {
                long now = cpuTicks(pids.get(i));
                lastCpu.add((double) (now - last[i]));
                if (now - last[i] >= percent) {
                    allQuiet = false;
                }
                last[i] = now;
            }
            quietSeconds = allQuiet ? quietSeconds + 1 : 0;
            if (quietSeconds >= 2) {
                return (System.nanoTime() - t0) / 1e9;
            }
        }
        return -1;
    }

    /**
     * The CPU time of all of a process's threads in nanoseconds, from each thread's schedstat:
     * one step of a claim or an exec costs a few ms, under the 10 ms tick {@link #cpuTicks} counts.
     */
    static long cpuNanos(long pid) {
        long sum = 0;
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path t : tasks.toList()) {
                try {
                    sum += Long.parseLong(
                            Files.readString(t.resolve("schedstat")).split(" ")[0]);
                } catch (IOException e) {
                    // the thread ended between the listing and the read: its time is gone with it
                }
            }
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("process " + pid + " is gone", e);
        }
        return sum;
    }

    /**
     * The CPU time of this JVM's JIT compiler threads in nanoseconds: a benchmark's own JVM
     * compiles the code a step first ran while the next step is timed, on the same cores as the VM.
     */
    static long jitNanos() {
        long sum = 0;
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : tasks.toList()) {
                try {
                    if (Files.readString(t.resolve("comm")).contains("Compiler")) {
                        sum += Long.parseLong(
                                Files.readString(t.resolve("schedstat")).split(" ")[0]);
                    }
                } catch (IOException e) {
                    // the thread ended between the listing and the read
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read this process's threads", e);
        }
        return sum;
    }

    /** utime + stime of a process in clock ticks (1/100 s). */
    static long cpuTicks(long pid) {
        try {
            String[] f = Files.readString(Path.of("/proc", Long.toString(pid), "stat"))
                    .replaceFirst("^.*\\) ", "")
                    .split(" ");
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("process " + pid + " is gone", e);
        }
    }

    /** The kB fields of /proc/PID/smaps_rollup. */
    static Map<String, Long> smapsRollup(long pid) throws IOException {
        Map<String, Long> m = new java.util.HashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "smaps_rollup"))) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.endsWith("kB")) {
                m.put(line.substring(0, colon), Long.parseLong(line.replaceAll("[^0-9]", "")));
            }
        }
        if (!m.containsKey("Pss") || !m.containsKey("Rss")) {
            throw new IOException("no Pss/Rss in /proc/" + pid + "/smaps_rollup");
        }
        return m;
    }

    // ---- helpers ----

    /**
     * A new agent session. A session opened right after another one closed can fail its HELLO
     * with EPROTO "unknown frame type": the agent has not yet seen the old connection end, so the
     * new HELLO lands in the old session, and a reconnect at once would land in the failed one.
     * Such attempts are retried after a pause that lets the agent see the port close; they are
     * counted, and their time stays in the figure.
     */
    private GuestChannel connect(Sandbox s) throws IOException, InterruptedException {
        connects++;
        for (int attempt = 1; ; attempt++) {
            try {
                return engine.connect(s, TIMEOUT);
            } catch (GuestChannelClosedException e) {
                reconnects.add(String.valueOf(e.getMessage()));
                if (attempt == 5) {
                    throw e;
                }
                Thread.sleep(RETRY_PAUSE);
            }
        }
    }

    private CreateOptions options(String what) {
        return CreateOptions.builder()
                .name("bench-" + what + "-" + counter++)
                .runtime("microvm")
                .build();
    }

    private static void run(GuestChannel ch, ExecSpec spec) throws Exception {
        check(ch.exec(spec, DISCARD, DISCARD).await(), spec.argv().getFirst());
    }

    private static void check(ExitStatus st, String what) {
        if (st.exitCode() != 0 || st.signal() != 0) {
            throw new IllegalStateException(what + " failed in the guest: " + st);
        }
    }

    private void remove(String name) {
        try {
            engine.remove(name, true);
        } catch (RuntimeException e) {
            BenchEnv.LOG.step("cannot remove sandbox " + name + ": " + e.getMessage());
        }
        sandboxes.remove(name);
    }

    private void removeAll() {
        List.copyOf(sandboxes).forEach(this::remove);
    }

    private static double ms(long nanos) {
        return nanos / 1e6;
    }

    private static double mbps(long bytes, double seconds) {
        return bytes / 1e6 / seconds;
    }
}
