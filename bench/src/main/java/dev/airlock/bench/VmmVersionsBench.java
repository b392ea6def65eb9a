package dev.airlock.bench;

import dev.airlock.daemon.HostBackends;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.vmm.QemuMicrovm;
import dev.airlock.vmm.RunningVm;
import dev.airlock.vmm.VmSpec;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * QEMU 7.2 beside QEMU 10 (unjailed, and jailed as Airlock runs it), interleaved: every round
 * measures each variant once, in turn, so load from elsewhere on the host hits all of them alike.
 * Same kernel, agent initramfs, base image and command line (the engine's, for each QEMU).
 * Figures: cold boot (launch to the agent's HELLO), ping and exec of {@code true} on an open
 * session (in blocks of 10, alternating), and template start to first exec through the engine.
 */
final class VmmVersionsBench {
    private static final Duration TIMEOUT = Duration.ofSeconds(180);
    private static final OutputStream DISCARD = OutputStream.nullOutputStream();

    private record Variant(String name, String binary, boolean jail) {
        QemuMicrovm qemu() {
            return new QemuMicrovm(binary, jail);
        }
    }

    private final Args args;
    private final BenchEnv env;
    private final List<Variant> variants;
    private final Report report = new Report("vmm-versions");

    private VmmVersionsBench(Args args, BenchEnv env, List<Variant> variants) {
        this.args = args;
        this.env = env;
        this.variants = variants;
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/vmm-versions.sh [flags]")
                .flag("qemu72", "", "QEMU 7.2 binary (default: the copy bench/qemu-7.2.sh keeps)")
                .flag("boots", 5, "measured cold boots per variant (one warm-up round first)")
                .flag("execs", 100, "measured pings and execs per variant, in blocks of 10")
                .flag("starts", 5, "measured template starts per variant (one warm-up first: builds it)")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        Path q72 = args.path("qemu72");
        String qemu72 = q72 != null
                ? q72.toString()
                : Path.of(System.getProperty("user.home"), ".cache/airlock/qemu-7.2/usr/bin/qemu-system-x86_64")
                        .toString();
        if (!Files.isExecutable(Path.of(qemu72))) {
            throw new IllegalStateException("no QEMU 7.2 at " + qemu72 + "; make one with bench/qemu-7.2.sh");
        }
        List<Variant> variants = List.of(
                new Variant("qemu72", qemu72, false),
                new Variant("qemu10", QemuMicrovm.FULL, false),
                new Variant("qemu10jail", QemuMicrovm.FULL, true));
        try (BenchEnv env = BenchEnv.open()) {
            new VmmVersionsBench(args, env, variants).run();
        }
    }

    private void run() throws Exception {
        Map<String, String> versions = new LinkedHashMap<>();
        for (Variant v : variants) {
            QemuMicrovm q = v.qemu();
            versions.put(v.name(), q.version() + (q.jail().jail() != null ? ", jailed" : ", unjailed"));
        }
        report.host(env.hostInfo()).config(args.effective()).extra("variants", versions);
        coldBoots();
        roundTrips();
        templateStarts();
        report.print(System.out);
        System.out.println("\nresult: " + report.write(env.resultsDir(args)));
    }

    private VmSpec spec(String prefix) {
        Path dir = env.newDir(prefix);
        return env.agentSpec(dir, BenchEnv.newLayer(dir.resolve("layer.ext4"), 1024), 512, true);
    }

    private void coldBoots() throws Exception {
        int n = args.integer("boots", 1);
        Map<String, List<Double>> boot = samples();
        for (int i = 0; i < n + 1; i++) {
            for (Variant v : variants) {
                VmSpec spec = spec(v.name());
                long t0 = System.nanoTime();
                RunningVm vm = v.qemu().launch(spec);
                try (GuestChannel ignored = GuestChannel.connect(spec.agentSocket(), TIMEOUT)) {
                    double ms = (System.nanoTime() - t0) / 1e6;
                    if (i > 0) {
                        Objects.requireNonNull(boot.get(v.name())).add(ms);
                    }
                    BenchEnv.LOG.step((i == 0 ? "warm-up " : "boot " + i + "/" + n + " ") + v.name() + ": "
                            + Math.round(ms) + " ms");
                } finally {
                    vm.kill();
                    HostFiles.deleteTree(spec.stateDir());
                }
            }
        }
        addAll("boot", "cold boot: QEMU launch -> agent HELLO", "ms", boot);
    }

    private void roundTrips() throws Exception {
        int blocks = Math.max(1, args.integer("execs", 10) / 10);
        Map<String, List<Double>> ping = samples();
        Map<String, List<Double>> exec = samples();
        List<RunningVm> vms = new ArrayList<>();
        Map<String, GuestChannel> channels = new LinkedHashMap<>();
        try {
            for (Variant v : variants) {
                VmSpec spec = spec(v.name() + "-hot");
                vms.add(v.qemu().launch(spec));
                GuestChannel ch = GuestChannel.connect(spec.agentSocket(), TIMEOUT);
                channels.put(v.name(), ch);
                for (int i = 0; i < 10; i++) {
                    run(ch);
                }
            }
            BenchEnv.LOG.step("round trips: " + blocks + " blocks of 10 pings and 10 execs per variant, alternating");
            for (int b = 0; b < blocks; b++) {
                for (Variant v : variants) {
                    GuestChannel ch = Objects.requireNonNull(channels.get(v.name()));
                    for (int i = 0; i < 10; i++) {
                        Objects.requireNonNull(ping.get(v.name())).add(ch.ping().toNanos() / 1e6);
                    }
                    for (int i = 0; i < 10; i++) {
                        long t = System.nanoTime();
                        run(ch);
                        Objects.requireNonNull(exec.get(v.name())).add((System.nanoTime() - t) / 1e6);
                    }
                }
            }
        } finally {
            for (GuestChannel ch : channels.values()) {
                ch.close();
            }
            vms.forEach(RunningVm::kill);
        }
        addAll("ping", "ping round trip (open session)", "ms", ping);
        addAll("exec", "exec 'true' round trip (open session)", "ms", exec);
    }

    private void templateStarts() throws Exception {
        int n = args.integer("starts", 1);
        Map<String, SandboxEngine> engines = new LinkedHashMap<>();
        for (Variant v : variants) {
            // The engine takes its QEMU binary and jail setting when it is made.
            System.setProperty("airlock.qemu", v.binary());
            System.setProperty("airlock.vmmJail", v.jail() ? "on" : "off");
            try {
                SandboxEngine e = HostBackends.engine(env.dirs, BenchEnv.LOG, true);
                engines.put(v.name(), e);
            } finally {
                System.clearProperty("airlock.qemu");
                System.clearProperty("airlock.vmmJail");
            }
        }
        Map<String, List<Double>> total = samples();
        Map<String, List<Double>> first = samples();
        int counter = 0;
        for (int i = 0; i < n + 1; i++) {
            for (Variant v : variants) {
                SandboxEngine e = Objects.requireNonNull(engines.get(v.name()));
                String name = "vv-" + v.name() + "-" + counter++;
                long t0 = System.nanoTime();
                Sandbox s = e.start(e.create(CreateOptions.builder()
                                .name(name)
                                .runtime("microvm")
                                .build())
                        .name());
                long t1 = System.nanoTime();
                try (GuestChannel ch = e.connect(s, TIMEOUT)) {
                    run(ch);
                }
                long t2 = System.nanoTime();
                if (!e.origin(s).startsWith("template ")) {
                    throw new IllegalStateException(name + " did not start from a template: " + e.origin(s));
                }
                e.remove(name, true);
                if (i > 0) {
                    Objects.requireNonNull(total.get(v.name())).add((t2 - t0) / 1e6);
                    Objects.requireNonNull(first.get(v.name())).add((t2 - t1) / 1e6);
                }
                BenchEnv.LOG.step((i == 0 ? "warm-up (builds the template) " : "start " + i + "/" + n + " ")
                        + v.name() + ": " + Math.round((t2 - t0) / 1e6) + " ms, first exec "
                        + Math.round((t2 - t1) / 1e6) + " ms");
            }
        }
        addAll("template", "template start: create+start+exec true", "ms", total);
        addAll("template.exec", "  first exec after the restore", "ms", first);
    }

    private Map<String, List<Double>> samples() {
        Map<String, List<Double>> m = new LinkedHashMap<>();
        variants.forEach(v -> m.put(v.name(), new ArrayList<>()));
        return m;
    }

    /** One figure per variant, each against the first (QEMU 7.2). */
    private void addAll(String key, String label, String unit, Map<String, List<Double>> byVariant) {
        String base = null;
        for (Variant v : variants) {
            String k = v.name() + "." + key;
            report.add(k, label + " [" + v.name() + "]", unit, Objects.requireNonNull(byVariant.get(v.name())), base);
            if (base == null) {
                base = k;
            }
        }
    }

    private static void run(GuestChannel ch) throws Exception {
        ExitStatus st = ch.exec(ExecSpec.of("true"), DISCARD, DISCARD).await();
        if (st.exitCode() != 0) {
            throw new IllegalStateException("true failed in the guest: " + st);
        }
    }
}
