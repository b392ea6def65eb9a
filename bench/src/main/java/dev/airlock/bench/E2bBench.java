package dev.airlock.bench;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Airlock through the unchanged {@code e2b} SDK, as an E2B user's program meets it: {@code
 * sandbox.commands.run('true')} round trips on a running sandbox beside {@code podman exec CTR
 * true} in a running container of the same root filesystem, and create to first command result
 * through the SDK ({@code Sandbox.create} + {@code commands.run('true')}) beside the CLI's
 * {@code airlock run --rm -- true}, all in one run against one daemon.
 */
public final class E2bBench {
    /** The SDK release the endpoint's tests pin. */
    static final String SDK = "e2b@2.51.0";

    /**
     * Runs in the SDK's directory; prints one JSON line. The SDK's own timing is the program's
     * wall clock around each awaited call, as a user would measure it.
     */
    static final String SCRIPT = """
            import { Sandbox } from 'e2b'
            const n = Number(process.env.N), warmup = Number(process.env.WARMUP), creates = Number(process.env.CREATES)
            const out = { first: [], run: [] }
            for (let i = 0; i < creates + 1; i++) {
              const t0 = performance.now()
              const s = await Sandbox.create('base', { timeoutMs: 600_000 })
              await s.commands.run('true')
              if (i > 0) out.first.push(performance.now() - t0)
              if (i < creates) await s.kill()
              else out.sandbox = s
            }
            const s = out.sandbox
            delete out.sandbox
            for (let i = 0; i < warmup + n; i++) {
              const t = performance.now()
              const r = await s.commands.run('true')
              if (r.exitCode !== 0) throw new Error('true exited ' + r.exitCode)
              if (i >= warmup) out.run.push(performance.now() - t)
            }
            await s.kill()
            console.log(JSON.stringify(out))
            """;

    private final Args args;
    private final Report report = new Report("e2b");
    private static final Path JAVA = Path.of(System.getProperty("java.home"), "bin", "java");
    private static final String HOME = System.getProperty("airlock.home", ".");

    private E2bBench(Args args) {
        this.args = args;
    }

    public static void main(String[] argv) throws Exception {
        Args a = new Args("bench/e2b.sh")
                .flag("n", 50, "timed commands.run('true') and podman exec round trips")
                .flag("warmup", 5, "untimed round trips first")
                .flag("creates", 5, "timed create -> first result, through the SDK and the CLI (one untimed first)")
                .flag("runtime", "container", "runtime of the sandboxes (container or microvm)")
                .flag(
                        "sdk",
                        "",
                        "a directory holding node_modules/e2b (default: npm installs " + SDK + " in a temp dir)")
                .flag("out", "", "where the JSON goes (default: bench/results)")
                .parse(argv);
        new E2bBench(a).run();
    }

    private void run() throws Exception {
        int n = args.integer("n", 1);
        int warmup = args.integer("warmup", 0);
        int creates = args.integer("creates", 1);
        String runtime = args.string("runtime");
        report.config(args.effective());

        List<Double> podman = CliBench.podmanExec(n, warmup);

        Path tmp = Files.createTempDirectory("airlock-bench-e2b-");
        Path runtimeDir = Files.createTempDirectory(Path.of("/tmp"), "albe2b");
        Map<String, String> env = Map.of(
                "AIRLOCK_CACHE_DIR", AirlockDirs.fromEnvironment().cache().toString(),
                "AIRLOCK_DATA_DIR", tmp.resolve("data").toString(),
                "AIRLOCK_RUNTIME_DIR", runtimeDir.toString());
        Process endpoint = null;
        try {
            Path given = args.path("sdk");
            Path sdk = given != null ? given : installSdk(tmp.resolve("node"));
            int port;
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
            ProcessBuilder pb = new ProcessBuilder(
                            airlock("e2b", "--listen", "127.0.0.1:" + port, "--runtime", runtime))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.environment().putAll(env);
            endpoint = pb.start();
            awaitBanner(endpoint);
            String url = "http://127.0.0.1:" + port;
            String key = Files.readString(tmp.resolve("data/e2b/api-key")).strip();

            JsonNode r = runScript(sdk, "airlock-e2b-bench.mjs", url, key, n, warmup, creates);

            List<Double> cliFirst = new ArrayList<>();
            for (int i = 0; i < creates + 1; i++) {
                long t = System.nanoTime();
                CliBench.check(cli(env, "run", "--rm", "--runtime", runtime, "--", "true"), "airlock run --rm");
                if (i > 0) {
                    cliFirst.add((System.nanoTime() - t) / 1e6);
                }
            }

            report.add(
                    "podman.exec", "podman exec CTR true (runc, running container; a new process)", "ms", podman, null);
            report.add(
                    "e2b.run",
                    "e2b SDK sandbox.commands.run('true') on a running " + runtime + " sandbox",
                    "ms",
                    samples(r.get("run")),
                    "podman.exec");
            report.add("cli.first", "airlock run --rm -- true (" + runtime + "; a new JVM)", "ms", cliFirst, null);
            report.add(
                    "e2b.first",
                    "e2b SDK Sandbox.create('base') + commands.run('true') (" + runtime + ")",
                    "ms",
                    samples(r.get("first")),
                    "cli.first");
            report.note("the SDK's figures are wall time around each awaited call in one Node process (Node "
                    + HostCommand.run(List.of("node", "--version"), null, null)
                            .output()
                            .strip() + ", " + SDK
                    + "), through airlock e2b on 127.0.0.1 (HTTP/1.1, Connect JSON) and the daemon's unix socket");
            report.note("the first create of each kind is untimed (class loading, image mount)");
            report.print(System.out);
            String out = args.string("out");
            Path written = report.write(out.isEmpty() ? Path.of(HOME, "bench", "results") : Path.of(out));
            System.err.println("bench: wrote " + written);
        } finally {
            if (endpoint != null) {
                endpoint.destroy();
                endpoint.waitFor(10, TimeUnit.SECONDS);
            }
            // a sandbox a failed run left behind
            for (String name : cli(env, "ps", "-a", "-q").output().lines().toList()) {
                if (!name.isBlank()) {
                    cli(env, "rm", "-f", name.strip());
                }
            }
            CliBench.stopDaemon(runtimeDir);
            HostFiles.deleteTree(tmp);
            HostFiles.deleteTree(runtimeDir);
        }
    }

    /**
     * Runs {@link #SCRIPT} (written to {@code sdk/script}) against an E2B endpoint at {@code url}
     * and returns the JSON line it printed last: {@code first} (create -> first result, ms) and
     * {@code run} (commands.run round trips, ms).
     */
    static JsonNode runScript(Path sdk, String script, String url, String key, int n, int warmup, int creates)
            throws IOException, InterruptedException {
        Files.writeString(sdk.resolve(script), SCRIPT);
        ProcessBuilder node = new ProcessBuilder("node", script)
                .directory(sdk.toFile())
                .redirectError(ProcessBuilder.Redirect.INHERIT);
        node.environment()
                .putAll(Map.of(
                        "E2B_API_URL",
                        url,
                        "E2B_SANDBOX_URL",
                        url,
                        "E2B_API_KEY",
                        key,
                        "N",
                        String.valueOf(n),
                        "WARMUP",
                        String.valueOf(warmup),
                        "CREATES",
                        String.valueOf(creates)));
        Process p = node.start();
        String printed = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IllegalStateException("the SDK script failed (exit " + p.exitValue() + "): " + printed);
        }
        return JsonMapper.builder()
                .build()
                .readTree(printed.strip().lines().reduce((a, b) -> b).orElseThrow());
    }

    static List<Double> samples(JsonNode array) {
        List<Double> out = new ArrayList<>();
        array.forEach(v -> out.add(v.doubleValue()));
        return out;
    }

    static Path installSdk(Path dir) throws IOException {
        Files.createDirectories(dir);
        HostCommand.Result r = HostCommand.run(
                List.of(
                        "npm",
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                        dir.toString(),
                        SDK),
                null,
                null);
        CliBench.check(r, "npm install " + SDK);
        return dir;
    }

    /** Waits until the endpoint says it listens; its later output is dropped. */
    private static void awaitBanner(Process p) throws IOException {
        BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        for (String line; (line = err.readLine()) != null; ) {
            seen.append(line).append('\n');
            if (line.contains("E2B endpoint on")) {
                Thread.ofVirtual().start(() -> {
                    try {
                        p.getErrorStream().transferTo(OutputStream.nullOutputStream());
                    } catch (IOException e) {
                        // the endpoint ended
                    }
                });
                return;
            }
        }
        throw new IllegalStateException("airlock e2b exited before listening:\n" + seen);
    }

    /** The CLI of this build in a new JVM, as a user runs it. */
    static List<String> airlock(String... cmd) {
        List<String> argv = new ArrayList<>(List.of(
                JAVA.toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dairlock.home=" + HOME,
                "-jar",
                Path.of(HOME, "airlock", "target", "airlock.jar").toString()));
        argv.addAll(List.of(cmd));
        return argv;
    }

    static HostCommand.Result cli(Map<String, String> env, String... cmd) {
        List<String> argv = new ArrayList<>(List.of("env"));
        env.forEach((k, v) -> argv.add(k + "=" + v));
        argv.addAll(airlock(cmd));
        return HostCommand.run(argv, null, null);
    }
}
