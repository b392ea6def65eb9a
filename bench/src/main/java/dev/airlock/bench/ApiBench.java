package dev.airlock.bench;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.sdk.Airlock;
import dev.airlock.sdk.Command;
import dev.airlock.sdk.OutputHandler;
import dev.airlock.sdk.Sandbox;
import dev.airlock.sdk.SandboxSpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The daemon's network front ends against one {@code airlock serve --listen 127.0.0.1:0}, in one
 * run: create to first command result through the Java SDK (over TCP with the token and over the
 * unix socket) beside the unchanged {@code e2b} SDK (on the same port) and the CLI ({@code
 * airlock run --rm -- true}); and the HTTP API's streaming throughput (a command's output,
 * streamed; a file download) through the Java SDK beside the same bytes through the sandbox's
 * mux socket (the binary guest protocol, what the CLI's sessions speak).
 */
public final class ApiBench {
    private static final Pattern SERVING = Pattern.compile("serving the API on http://[^\\s,]*:(\\d+)");

    private final Args args;
    private final Report report = new Report("api");

    private ApiBench(Args args) {
        this.args = args;
    }

    public static void main(String[] argv) throws Exception {
        Args a = new Args("bench/api.sh")
                .flag("creates", 5, "timed create -> first result per client (one untimed first)")
                .flag("reps", 5, "timed transfers per path (one untimed first)")
                .flag("mib", 256, "bytes per transfer, in MiB")
                .flag("runtime", "container", "runtime of the sandboxes (container, gvisor or microvm)")
                .flag(
                        "sdk",
                        "",
                        "a directory holding node_modules/e2b (default: npm installs " + E2bBench.SDK
                                + " in a temp dir)")
                .flag("out", "", "where the JSON goes (default: bench/results)")
                .parse(argv);
        new ApiBench(a).run();
    }

    private void run() throws Exception {
        int creates = args.integer("creates", 1);
        int reps = args.integer("reps", 1);
        long bytes = (long) args.integer("mib", 1) << 20;
        String runtime = args.string("runtime");
        report.config(args.effective());

        Path tmp = Files.createTempDirectory("airlock-bench-api-");
        Path runtimeDir = Files.createTempDirectory(Path.of("/tmp"), "albapi");
        Map<String, String> env = Map.of(
                "AIRLOCK_CACHE_DIR", AirlockDirs.fromEnvironment().cache().toString(),
                "AIRLOCK_DATA_DIR", tmp.resolve("data").toString(),
                "AIRLOCK_RUNTIME_DIR", runtimeDir.toString(),
                // The E2B control plane makes sandboxes of the daemon's default runtime.
                "AIRLOCK_RUNTIME", runtime);
        Process daemon = null;
        try {
            Path given = args.path("sdk");
            Path sdk = given != null ? given : E2bBench.installSdk(tmp.resolve("node"));
            ProcessBuilder pb =
                    new ProcessBuilder(E2bBench.airlock("serve", "--listen", "127.0.0.1:0")).redirectErrorStream(true);
            pb.environment().putAll(env);
            daemon = pb.start();
            String url = "http://127.0.0.1:" + awaitPort(daemon);
            String token = Files.readString(tmp.resolve("data/api-token")).strip();
            Path socket = runtimeDir.resolve("airlockd.sock");

            List<Double> e2b =
                    E2bBench.samples(E2bBench.runScript(sdk, "airlock-api-bench.mjs", url, token, 0, 0, creates)
                            .get("first"));
            List<Double> cli = new ArrayList<>();
            for (int i = 0; i < creates + 1; i++) {
                long t = System.nanoTime();
                CliBench.check(E2bBench.cli(env, "run", "--rm", "--runtime", runtime, "--", "true"), "airlock run");
                if (i > 0) {
                    cli.add(ms(t));
                }
            }
            try (Airlock tcp = Airlock.connect(URI.create(url), token);
                    Airlock unix = Airlock.connect(socket)) {
                List<Double> sdkTcp = sdkFirst(tcp, runtime, creates);
                List<Double> sdkUnix = sdkFirst(unix, runtime, creates);
                report.add("cli.first", "airlock run --rm -- true (" + runtime + "; a new JVM)", "ms", cli, null);
                report.add("e2b.first", "e2b SDK Sandbox.create + commands.run('true')", "ms", e2b, "cli.first");
                report.add("sdk.first.tcp", "Java SDK create + exec(true), TCP + token", "ms", sdkTcp, "cli.first");
                report.add("sdk.first.unix", "Java SDK create + exec(true), unix socket", "ms", sdkUnix, "cli.first");
                throughput(tcp, unix, runtime, runtimeDir, bytes, reps);
            }
            report.note("one serve daemon for every row; " + runtime + " sandboxes; the first create of each kind"
                    + " and the first transfer of each path are untimed");
            report.note("throughput: " + (bytes >> 20) + " MiB of zeros from head -c in the sandbox (exec) and"
                    + " from a file in its /tmp (download), counted as they arrive in this JVM; HTTP is the"
                    + " SDK's java.net.http/unix-socket client reading chunked JSON lines (exec) or the raw body"
                    + " (download); mux is GuestChannel on the daemon's per-sandbox mux socket");
            report.print(System.out);
            String out = args.string("out");
            Path written = report.write(
                    out.isEmpty()
                            ? Path.of(System.getProperty("airlock.home", "."), "bench", "results")
                            : Path.of(out));
            System.err.println("bench: wrote " + written);
        } finally {
            if (daemon != null) {
                // a sandbox a failed run left behind
                for (String name :
                        E2bBench.cli(env, "ps", "-a", "-q").output().lines().toList()) {
                    if (!name.isBlank()) {
                        E2bBench.cli(env, "rm", "-f", name.strip());
                    }
                }
                daemon.destroy();
                daemon.waitFor(20, TimeUnit.SECONDS);
            }
            CliBench.stopDaemon(runtimeDir);
            HostFiles.deleteTree(tmp);
            HostFiles.deleteTree(runtimeDir);
        }
    }

    private static double ms(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e6;
    }

    /** Reads the daemon's output until it names its TCP port; the rest is dropped. */
    private static String awaitPort(Process p) throws IOException {
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        for (String line; (line = out.readLine()) != null; ) {
            seen.append(line).append('\n');
            Matcher m = SERVING.matcher(line);
            if (m.find()) {
                Thread.ofVirtual().start(() -> {
                    try {
                        p.getInputStream().transferTo(OutputStream.nullOutputStream());
                    } catch (IOException e) {
                        // the daemon ended
                    }
                });
                return m.group(1);
            }
        }
        throw new IllegalStateException("airlock serve ended before listening:\n" + seen);
    }

    private static List<Double> sdkFirst(Airlock airlock, String runtime, int creates) {
        List<Double> out = new ArrayList<>();
        for (int i = 0; i < creates + 1; i++) {
            long t = System.nanoTime();
            Sandbox s = airlock.sandboxes()
                    .create(SandboxSpec.builder().runtime(runtime).build());
            int exit = s.exec(Command.of("true")).exitCode();
            double took = ms(t);
            s.remove();
            if (exit != 0) {
                throw new IllegalStateException("true exited " + exit);
            }
            if (i > 0) {
                out.add(took);
            }
        }
        return out;
    }

    private void throughput(Airlock tcp, Airlock unix, String runtime, Path runtimeDir, long bytes, int reps)
            throws Exception {
        Sandbox s =
                unix.sandboxes().create(SandboxSpec.builder().runtime(runtime).build());
        try {
            String n = Long.toString(bytes);
            if (s.exec(Command.of("sh", "-c", "head -c " + n + " /dev/zero > /tmp/blob"))
                            .exitCode()
                    != 0) {
                throw new IllegalStateException("could not write /tmp/blob in the sandbox");
            }
            Path mux = muxSocket(runtimeDir, s.id());
            List<Double> httpExecTcp = new ArrayList<>();
            List<Double> httpExecUnix = new ArrayList<>();
            List<Double> muxExec = new ArrayList<>();
            List<Double> httpGetTcp = new ArrayList<>();
            List<Double> httpGetUnix = new ArrayList<>();
            List<Double> muxGet = new ArrayList<>();
            try (GuestChannel channel = GuestChannel.connect(mux, Duration.ofSeconds(30))) {
                for (int i = 0; i < reps + 1; i++) {
                    keep(i, httpExecTcp, sdkExec(tcp.sandboxes().get(s.name()), n, bytes));
                    keep(i, httpExecUnix, sdkExec(s, n, bytes));
                    keep(i, muxExec, muxExec(channel, n, bytes));
                    keep(i, httpGetTcp, sdkRead(tcp.sandboxes().get(s.name()), bytes));
                    keep(i, httpGetUnix, sdkRead(s, bytes));
                    keep(i, muxGet, muxRead(channel, bytes));
                }
            }
            report.add("mux.exec", "exec output, mux socket (guest protocol)", "MiB/s", muxExec, null);
            report.add(
                    "http.exec.unix", "exec output, HTTP stream, unix socket (SDK)", "MiB/s", httpExecUnix, "mux.exec");
            report.add(
                    "http.exec.tcp", "exec output, HTTP stream, TCP + token (SDK)", "MiB/s", httpExecTcp, "mux.exec");
            report.add("mux.read", "file download, mux socket (guest protocol)", "MiB/s", muxGet, null);
            report.add(
                    "http.read.unix", "file download, HTTP GET, unix socket (SDK)", "MiB/s", httpGetUnix, "mux.read");
            report.add("http.read.tcp", "file download, HTTP GET, TCP + token (SDK)", "MiB/s", httpGetTcp, "mux.read");
        } finally {
            s.remove();
        }
    }

    private static void keep(int i, List<Double> into, double value) {
        if (i > 0) {
            into.add(value);
        }
    }

    /** The daemon's shared agent socket of the sandbox: {@code RUNTIME/mux/<id's first 16>.sock}. */
    private static Path muxSocket(Path runtimeDir, String id) throws IOException {
        try (Stream<Path> all = Files.list(runtimeDir.resolve("mux"))) {
            return all.filter(p -> id.startsWith(p.getFileName().toString().replaceFirst("\\.sock$", "")))
                    .findFirst()
                    .orElseThrow(() -> new IllegalStateException("no mux socket for sandbox " + id));
        }
    }

    private static double mibPerSecond(long bytes, long startNanos, long counted) {
        if (counted != bytes) {
            throw new IllegalStateException("expected " + bytes + " bytes, got " + counted);
        }
        return (bytes / (double) (1 << 20)) / ((System.nanoTime() - startNanos) / 1e9);
    }

    private static double sdkExec(Sandbox s, String n, long bytes) throws IOException {
        AtomicLong counted = new AtomicLong();
        long t = System.nanoTime();
        s.exec(Command.of("head", "-c", n, "/dev/zero"), new OutputHandler() {
                    @Override
                    public void stdout(byte[] b) {
                        counted.addAndGet(b.length);
                    }

                    @Override
                    public void stderr(byte[] b) {}
                })
                .await();
        return mibPerSecond(bytes, t, counted.get());
    }

    private static double muxExec(GuestChannel channel, String n, long bytes) throws Exception {
        Counting out = new Counting();
        long t = System.nanoTime();
        channel.exec(ExecSpec.of("head", "-c", n, "/dev/zero"), out, OutputStream.nullOutputStream())
                .await();
        return mibPerSecond(bytes, t, out.count);
    }

    private static double sdkRead(Sandbox s, long bytes) {
        Counting out = new Counting();
        long t = System.nanoTime();
        s.files().read("/tmp/blob", out);
        return mibPerSecond(bytes, t, out.count);
    }

    private static double muxRead(GuestChannel channel, long bytes) throws Exception {
        Counting out = new Counting();
        long t = System.nanoTime();
        channel.readFile("/tmp/blob", out);
        return mibPerSecond(bytes, t, out.count);
    }

    /** Counts what it is given and keeps none of it. */
    private static final class Counting extends OutputStream {
        private long count;

        @Override
        public void write(int b) {
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) {
            count += len;
        }
    }
}
