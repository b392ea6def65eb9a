package dev.airlock.bench;

import dev.airlock.vmm.VmSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Launch-to-init of the Airlock guest under QEMU microvm, against a bare boot of the same kernel.
 *
 * <p>Each Airlock boot runs the engine's exact QEMU command line (kernel, agent initramfs, base
 * image, a freshly formatted writable layer, every virtio device) in the foreground, with the
 * console on a pipe. Measured: (a) host wall time from spawning QEMU to the console line
 * {@code airlock-init: ready <uptime>}; (b) that uptime, the guest kernel's own clock from the
 * start of its timekeeping to init ready; (c) = (a) - (b), the time before the kernel clock
 * started: QEMU's own startup plus the kernel's earliest boot. The baseline boots the same kernel
 * on the same machine with no devices and a static init that prints its uptime and reboots.
 * Airlock and baseline boots alternate, so drift on the host hits both alike. Extra boots
 * without {@code quiet} ("traces") show where the kernel's time goes, from its printk timestamps.
 */
public final class BootBench {
    private static final String READY = "airlock-init: ready";
    private static final String INIT_START = "airlock-init: v1";
    private static final Pattern PRINTK = Pattern.compile("^\\[\\s*(\\d+\\.\\d+)\\] (.*)$");

    private final Args args;
    private final BenchEnv env;
    private final Path bareInitrd;
    private final int memory;
    private final Duration timeout;

    /** One boot's figures in milliseconds. */
    record Boot(double wall, double uptime, double initStage, double exit, List<QemuProcess.Line> console) {
        double beforeKernelClock() {
            return wall - uptime;
        }
    }

    private BootBench(Args args, BenchEnv env) {
        this.args = args;
        this.env = env;
        this.memory = args.integer("memory", 128);
        this.timeout = Duration.ofSeconds(args.integer("timeout", 1));
        this.bareInitrd = BareInit.build(env.newDir("bare-init"));
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/boot.sh [flags]")
                .flag("n", 20, "measured boots of each kind")
                .flag("warmup", 2, "discarded boots of each kind first")
                .flag("trace", 1, "extra boots without 'quiet' for the kernel's printk timestamps")
                .flag("memory", 512, "guest memory in MiB (the engine's default)")
                .flag("timeout", 120, "seconds a boot may take before the run fails")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        try (BenchEnv env = BenchEnv.open()) {
            new BootBench(args, env).run();
        }
    }

    private void run() throws InterruptedException {
        int n = args.integer("n", 1);
        int warmup = args.integer("warmup", 0);
        int traces = args.integer("trace", 0);
        Report report = new Report("boot").host(env.hostInfo()).config(args.effective());
        BenchEnv.LOG.step("boot: " + warmup + " warm-up + " + n + " measured boots each of Airlock and bare, " + traces
                + " traced; " + env.accel.flag());

        List<Boot> airlock = new ArrayList<>();
        List<Boot> bare = new ArrayList<>();
        for (int i = 0; i < warmup + n; i++) {
            boolean keep = i >= warmup;
            String tag = keep ? "boot " + (i - warmup + 1) + "/" + n : "warm-up " + (i + 1) + "/" + warmup;
            Boot a = airlockBoot(true);
            Boot b = bareBoot();
            BenchEnv.LOG.step(String.format(
                    "%s: airlock %.0f ms (uptime %.0f), bare %.0f ms (uptime %.0f)",
                    tag, a.wall(), a.uptime(), b.wall(), b.uptime()));
            if (keep) {
                airlock.add(a);
                bare.add(b);
            }
        }

        report.add("bare.wall", "bare: launch -> init ready (host wall)", "ms", map(bare, Boot::wall), null);
        report.add("bare.uptime", "bare: guest uptime at init ready", "ms", map(bare, Boot::uptime), null);
        report.add(
                "bare.pre",
                "bare: before kernel clock (wall - uptime)",
                "ms",
                map(bare, Boot::beforeKernelClock),
                null);
        report.add("bare.exit", "bare: launch -> QEMU exit after reboot", "ms", map(bare, Boot::exit), null);
        report.add(
                "airlock.wall",
                "airlock: launch -> init ready (host wall)",
                "ms",
                map(airlock, Boot::wall),
                "bare.wall");
        report.add(
                "airlock.uptime",
                "airlock: guest uptime at init ready",
                "ms",
                map(airlock, Boot::uptime),
                "bare.uptime");
        report.add(
                "airlock.pre",
                "airlock: before kernel clock (wall - uptime)",
                "ms",
                map(airlock, Boot::beforeKernelClock),
                "bare.pre");
        report.add(
                "airlock.init", "airlock: init start -> ready (host clock)", "ms", map(airlock, Boot::initStage), null);

        List<Map<String, Object>> traceData = new ArrayList<>();
        for (int t = 0; t < traces; t++) {
            Boot traced = airlockBoot(false);
            traceData.add(trace(traced, report, t == 0));
        }
        if (!traceData.isEmpty()) {
            report.extra("traces", traceData);
        }
        report.note("uptime is /proc/uptime read by init: CLOCK_BOOTTIME, which starts when the kernel sets up"
                + " timekeeping, so 'before kernel clock' also holds the kernel's first moments (PVH entry, early"
                + " setup before timekeeping_init), not only QEMU's startup");
        report.print(System.out);
        System.out.println("\nresult: " + report.write(env.resultsDir(args)));
    }

    private static List<Double> map(List<Boot> boots, java.util.function.ToDoubleFunction<Boot> f) {
        return boots.stream().mapToDouble(f).boxed().toList();
    }

    private Boot airlockBoot(boolean quiet) throws InterruptedException {
        Path dir = env.newDir("boot");
        Path layer = BenchEnv.newLayer(dir.resolve("layer.ext4"), 4096);
        VmSpec spec = env.agentSpec(dir, layer, memory, quiet);
        List<String> argv = QemuProcess.foreground(env.qemu.commandLine(spec));
        try (QemuProcess q = QemuProcess.launch(argv, READY, dir.resolve("qemu.stderr"))) {
            QemuProcess.Line ready = q.awaitReady(timeout);
            List<QemuProcess.Line> console = q.lines();
            double initStart = console.stream()
                    .filter(l -> l.text().contains(INIT_START))
                    .mapToDouble(QemuProcess.Line::millis)
                    .findFirst()
                    .orElse(Double.NaN);
            return new Boot(
                    ready.millis(), uptimeMillis(ready.text()), ready.millis() - initStart, Double.NaN, console);
        } finally {
            dev.airlock.host.HostFiles.deleteTree(dir);
        }
    }

    private Boot bareBoot() throws InterruptedException {
        Path dir = env.newDir("bare");
        VmSpec spec = env.bareSpec(dir, bareInitrd, memory, true);
        List<String> argv = QemuProcess.bare(env.qemu.commandLine(spec));
        try (QemuProcess q = QemuProcess.launch(argv, BareInit.READY, dir.resolve("qemu.stderr"))) {
            QemuProcess.Line ready = q.awaitReady(timeout);
            long exit = q.awaitExit(timeout);
            if (exit < 0) {
                throw new IllegalStateException("the bare guest did not power off\n" + q.diagnostics());
            }
            return new Boot(ready.millis(), uptimeMillis(ready.text()), Double.NaN, exit / 1e6, q.lines());
        } finally {
            dev.airlock.host.HostFiles.deleteTree(dir);
        }
    }

    static double uptimeMillis(String readyLine) {
        String[] words = readyLine.strip().split("\\s+");
        try {
            return Double.parseDouble(words[words.length - 1]) * 1000;
        } catch (NumberFormatException e) {
            throw new IllegalStateException("no uptime on the ready line: " + readyLine, e);
        }
    }

    /**
     * The kernel log of a boot without {@code quiet}: printk milestones and the largest gaps
     * between consecutive messages, which is where the boot time goes.
     */
    private Map<String, Object> trace(Boot b, Report report, boolean describe) {
        record Msg(double ts, double host, String text) {}
        List<Msg> msgs = new ArrayList<>();
        for (QemuProcess.Line l : b.console()) {
            Matcher m = PRINTK.matcher(l.text());
            if (m.matches()) {
                msgs.add(new Msg(Double.parseDouble(m.group(1)) * 1000, l.millis(), m.group(2)));
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("wallMs", b.wall());
        out.put("uptimeMs", b.uptime());
        out.put("printkLines", msgs.size());
        Map<String, Double> milestones = new LinkedHashMap<>();
        for (String what : List.of(
                "Linux version",
                "clocksource: Switched to clocksource",
                "Trying to unpack rootfs",
                "virtio_blk",
                "Freeing unused kernel image",
                "Run /init as init process")) {
            msgs.stream().filter(m -> m.text().contains(what)).findFirst().ifPresent(m -> milestones.put(what, m.ts()));
        }
        milestones.put("airlock-init: ready (uptime)", b.uptime());
        out.put("milestonesMs", milestones);
        List<Map<String, Object>> gaps = new ArrayList<>();
        List<Msg> sorted = new ArrayList<>(msgs);
        sorted.sort(Comparator.comparingDouble(Msg::ts));
        record Gap(double ms, Msg before, Msg after) {}
        List<Gap> all = new ArrayList<>();
        for (int i = 1; i < sorted.size(); i++) {
            all.add(new Gap(sorted.get(i).ts() - sorted.get(i - 1).ts(), sorted.get(i - 1), sorted.get(i)));
        }
        all.sort(Comparator.comparingDouble(Gap::ms).reversed());
        for (Gap g : all.subList(0, Math.min(6, all.size()))) {
            gaps.add(Map.of(
                    "ms",
                    g.ms(),
                    "after",
                    g.before().text(),
                    "before",
                    g.after().text()));
        }
        out.put("largestGaps", gaps);
        if (!msgs.isEmpty()) {
            Msg last = sorted.getLast();
            out.put("lastPrintk", Map.of("ms", last.ts(), "text", last.text()));
        }
        if (describe) {
            StringBuilder sb = new StringBuilder(String.format(
                    "traced boot (no 'quiet', %d printk lines): host wall %.0f ms, uptime %.0f ms; kernel clock"
                            + " milestones:",
                    msgs.size(), b.wall(), b.uptime()));
            milestones.forEach((k, v) -> sb.append(String.format("%n      %8.1f ms  %s", v, k)));
            sb.append("\n    largest gaps between kernel messages:");
            for (Gap g : all.subList(0, Math.min(6, all.size()))) {
                sb.append(String.format(
                        "%n      %8.1f ms  after \"%s\"",
                        g.ms(), abbreviate(g.before().text())));
            }
            report.note(sb.toString());
        }
        return out;
    }

    private static String abbreviate(String s) {
        return s.length() > 90 ? s.substring(0, 87) + "..." : s;
    }
}
