package dev.airlock.bench;

import com.sun.net.httpserver.HttpServer;
import dev.airlock.client.DaemonClient;
import dev.airlock.host.HostCommand;
import dev.airlock.net.NetworkSpec;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ExecRequest;
import dev.airlock.service.ExecResult;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;

/**
 * Egress through {@code --network proxy} and {@code --network nat} against the host's own
 * loopback, per runtime: (a) many small requests, curl's time per request (one curl process, K
 * URLs); (b) one large download, MB/s. The server is on the host's loopback. The proxy sandbox
 * reaches it by an {@code --add-host} name through the agent channel and the daemon's egress
 * proxy; the nat sandbox at slirp's host alias 10.0.2.2 through its user-mode NAT, allowed by
 * {@code --allow-host 127.0.0.1} past the firewall's loopback rule. The baseline is the host's
 * curl to the same server directly, measured in the same run, alternating with the sandboxes.
 */
public final class NetworkBench {
    private final Args args;
    private final BenchEnv env;
    private final Report report;

    private NetworkBench(Args args, BenchEnv env) {
        this.args = args;
        this.env = env;
        this.report = new Report("network").host(env.hostInfo()).config(args.effective());
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/network.sh [flags]")
                .flag("runtimes", "container,microvm", "runtimes to measure, comma-separated")
                .flag("rounds", 5, "measured rounds (each: K small requests and one large download, both ways)")
                .flag("small", 50, "small requests per round (K)")
                .flag("small-bytes", 1024, "size of a small response")
                .flag("large-mb", 64, "size of the large download in MiB")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        try (BenchEnv env = BenchEnv.open()) {
            new NetworkBench(args, env).run();
        }
    }

    private void run() throws Exception {
        int small = args.integer("small-bytes", 1);
        long large = (long) args.integer("large-mb", 1) << 20;
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 128);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/small", x -> {
            x.sendResponseHeaders(200, small);
            x.getResponseBody().write(new byte[small]);
            x.close();
        });
        server.createContext("/large", x -> {
            x.sendResponseHeaders(200, large);
            byte[] chunk = new byte[1 << 16];
            try (OutputStream out = x.getResponseBody()) {
                for (long sent = 0; sent < large; sent += chunk.length) {
                    out.write(chunk, 0, (int) Math.min(chunk.length, large - sent));
                }
            }
            x.close();
        });
        server.start();
        int port = server.getAddress().getPort();
        DaemonClient client = DaemonClient.connect(env.dirs);
        env.onClose(() -> stopDaemon(env));
        try {
            for (String runtime : args.string("runtimes").split(",")) {
                measure(client, runtime.strip(), port);
            }
        } finally {
            server.stop(0);
        }
        report.note("Sandbox figures are curl inside the sandbox (emulated by TCG in a microVM on this host):"
                + " proxy = through the agent channel and the daemon's egress proxy; nat = through the user-mode NAT"
                + " (QEMU's slirp for a microVM, slirp4netns for a container) and the host firewall; the baseline is"
                + " the host's curl straight to the server.");
        report.print(System.out);
        System.out.println("\nresult: " + report.write(env.resultsDir(args)));
    }

    private void measure(DaemonClient client, String runtime, int port) {
        String proxy = "netbench-" + runtime;
        String nat = "netbench-nat-" + runtime;
        create(
                client,
                proxy,
                runtime,
                new NetworkSpec("proxy", List.of("bench.test"), List.of("bench.test:127.0.0.1"), List.of()));
        create(client, nat, runtime, new NetworkSpec("nat", List.of("127.0.0.1"), List.of(), List.of()));
        int rounds = args.integer("rounds", 1);
        int k = args.integer("small", 1);
        String smallUrls = String.join(" ", java.util.Collections.nCopies(k, "http://bench.test:" + port + "/small"));
        String hostSmallUrls = smallUrls.replace("bench.test", "127.0.0.1");
        String natSmallUrls = smallUrls.replace("bench.test", "10.0.2.2");
        List<Double> hostSmall = new ArrayList<>();
        List<Double> proxySmall = new ArrayList<>();
        List<Double> natSmall = new ArrayList<>();
        List<Double> hostLarge = new ArrayList<>();
        List<Double> proxyLarge = new ArrayList<>();
        List<Double> natLarge = new ArrayList<>();
        String perRequest = "curl -s -o /dev/null -w '%{time_total}\\n' ";
        String speed = "curl -s -o /dev/null -w '%{speed_download}\\n' ";
        for (int round = -1; round < rounds; round++) {
            boolean keep = round >= 0; // round -1 warms up every side
            List<Double> h = times(HostCommand.check(List.of("bash", "-c", perRequest + hostSmallUrls)));
            List<Double> g = times(guest(client, proxy, perRequest + smallUrls));
            List<Double> n = times(guest(client, nat, perRequest + natSmallUrls));
            double hl = Double.parseDouble(
                            HostCommand.check(List.of("bash", "-c", speed + "http://127.0.0.1:" + port + "/large"))
                                    .strip())
                    / 1e6;
            double gl = Double.parseDouble(guest(client, proxy, speed + "http://bench.test:" + port + "/large")
                            .strip())
                    / 1e6;
            double nl = Double.parseDouble(guest(client, nat, speed + "http://10.0.2.2:" + port + "/large")
                            .strip())
                    / 1e6;
            BenchEnv.LOG.step(String.format(
                    "%s %s: small host %.2f ms, proxy %.2f ms, nat %.2f ms; large host %.0f MB/s, proxy %.1f MB/s,"
                            + " nat %.1f MB/s",
                    runtime,
                    keep ? "round " + (round + 1) + "/" + rounds : "warm-up",
                    Stats.of(h).median(),
                    Stats.of(g).median(),
                    Stats.of(n).median(),
                    hl,
                    gl,
                    nl));
            if (keep) {
                hostSmall.addAll(h);
                proxySmall.addAll(g);
                natSmall.addAll(n);
                hostLarge.add(hl);
                proxyLarge.add(gl);
                natLarge.add(nl);
            }
        }
        client.remove(proxy, true);
        client.remove(nat, true);
        String hs = "host.small." + runtime;
        String hl = "host.large." + runtime;
        report.add(hs, "host loopback: small request (" + runtime + " run)", "ms", hostSmall, null);
        report.add("proxy.small." + runtime, runtime + " proxy: small request", "ms", proxySmall, hs);
        report.add("nat.small." + runtime, runtime + " nat: small request", "ms", natSmall, hs);
        report.add(hl, "host loopback: " + args.integer("large-mb", 1) + " MiB download", "MB/s", hostLarge, null);
        report.add("proxy.large." + runtime, runtime + " proxy: download", "MB/s", proxyLarge, hl);
        report.add("nat.large." + runtime, runtime + " nat: download", "MB/s", natLarge, hl);
    }

    private void create(DaemonClient client, String name, String runtime, NetworkSpec network) {
        client.create(CreateSpec.builder()
                .name(name)
                .image("base")
                .runtime(runtime)
                .memoryMiB(512)
                .env(Map.of())
                .network(network.mode())
                .allowHosts(network.allowHosts())
                .addHosts(network.addHosts())
                .publish(network.ports())
                .build());
        env.onClose(() -> {
            if (client.list().stream().anyMatch(s -> s.name().equals(name))) {
                client.remove(name, true);
            }
        });
        client.start(name);
    }

    private static String guest(DaemonClient client, String name, String script) {
        ExecResult r = client.exec(name, new ExecRequest(List.of("bash", "-c", script), null, null, null, null, null));
        if (r.exitCode() != 0) {
            throw new IllegalStateException("in the sandbox, " + script + " failed: " + r.stderr());
        }
        return r.stdout();
    }

    /** curl's time_total lines (seconds) as milliseconds. */
    private static List<Double> times(String out) {
        return out.lines()
                .filter(l -> !l.isBlank())
                .map(l -> Double.parseDouble(l) * 1000)
                .toList();
    }

    private static void stopDaemon(BenchEnv env) {
        try {
            long pid = Long.parseLong(
                    Files.readString(env.dirs.runtime().resolve("airlockd.pid")).strip());
            ProcessHandle.of(pid).ifPresent(p -> {
                p.destroy();
                p.onExit().join();
            });
        } catch (java.io.IOException | NumberFormatException e) {
            // No daemon was started.
        }
    }
}
