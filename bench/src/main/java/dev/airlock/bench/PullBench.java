package dev.airlock.bench;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@code airlock image pull} (download, verify, unpack, pack erofs) against {@code skopeo copy}
 * (download, verify, write an OCI layout) followed by {@code umoci unpack} (extract to a
 * directory) of the same multi-layer image from the same loopback registry, in one run,
 * alternating which goes first. The image is the {@code base} image's own tree (a Debian
 * minbase) cut into four gzip layers with GNU tar and umoci, the last one with a whiteout.
 *
 * <p>Both start cold every time: a fresh Airlock store (no layers cached) and a fresh OCI
 * layout. Airlock runs as a user runs it, the CLI in its own JVM; its phases are timed from its
 * progress lines as they arrive.
 */
public final class PullBench {
    private final Args args;
    private final BenchEnv env;
    private final Report report;

    private PullBench(Args args, BenchEnv env) {
        this.args = args;
        this.env = env;
        this.report = new Report("pull").host(env.hostInfo()).config(args.effective());
    }

    public static void main(String[] argv) throws Exception {
        Args args = new Args("bench/pull.sh [flags]")
                .flag("n", 10, "measured pulls per tool")
                .flag("warmup", 1, "discarded pulls per tool first")
                .flag("out", "", "directory for the JSON result (default: bench/results)")
                .parse(argv);
        try (BenchEnv env = BenchEnv.open()) {
            new PullBench(args, env).run();
        }
    }

    private void run() throws Exception {
        Path work = env.newDir("pull");
        Path image = buildImage(work);
        try (Registry registry = Registry.start(work)) {
            String ref = registry.host() + "/bench/debian:v1";
            HostCommand.check(List.of(
                    "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + image + ":v1", "docker://" + ref));
            List<Double> airlockTotal = new ArrayList<>();
            List<Double> airlockDownload = new ArrayList<>();
            List<Double> airlockUnpack = new ArrayList<>();
            List<Double> airlockErofs = new ArrayList<>();
            List<Double> skopeo = new ArrayList<>();
            List<Double> umoci = new ArrayList<>();
            List<Double> baselineTotal = new ArrayList<>();
            int n = args.integer("n", 1);
            int warmup = args.integer("warmup", 0);
            for (int i = -warmup; i < n; i++) {
                boolean keep = i >= 0;
                Runnable airlock = () -> {
                    double[] t = airlockPull(work, ref);
                    if (keep) {
                        airlockTotal.add(t[0]);
                        airlockDownload.add(t[1]);
                        airlockUnpack.add(t[2]);
                        airlockErofs.add(t[3]);
                    }
                };
                Runnable baseline = () -> {
                    double[] t = skopeoUmoci(work, ref);
                    if (keep) {
                        skopeo.add(t[0]);
                        umoci.add(t[1]);
                        baselineTotal.add(t[0] + t[1]);
                    }
                };
                // alternate the order so page-cache and CPU-frequency effects hit both alike
                if ((i & 1) == 0) {
                    airlock.run();
                    baseline.run();
                } else {
                    baseline.run();
                    airlock.run();
                }
                BenchEnv.LOG.step("run " + i + " done");
            }
            report.add("baseline.total", "skopeo copy + umoci unpack", "s", baselineTotal, null);
            report.add("baseline.skopeo", "  skopeo copy (download + verify)", "s", skopeo, null);
            report.add("baseline.umoci", "  umoci unpack (extract)", "s", umoci, null);
            report.add(
                    "airlock.total",
                    "airlock image pull (CLI, JVM start included)",
                    "s",
                    airlockTotal,
                    "baseline.total");
            report.add(
                    "airlock.download",
                    "  download + verify (to last layer done)",
                    "s",
                    airlockDownload,
                    "baseline.skopeo");
            report.add("airlock.unpack", "  unpack + diff_id check", "s", airlockUnpack, "baseline.umoci");
            report.add("airlock.erofs", "  mkfs.erofs + commit", "s", airlockErofs, null);
            report.extra("image", Map.of("layers", 4, "uncompressedMiB", uncompressedMiB(work)));
            report.note("Same image, same loopback registry, fresh store/layout every run. Airlock's result is a"
                    + " read-only erofs image ready to boot; the baseline's is an OCI layout plus an unpacked rootfs"
                    + " directory. The airlock total includes starting its JVM (~0.4 s).");
            report.print(System.out);
            System.out.println("\nresult: " + report.write(env.resultsDir(args)));
        }
    }

    /** total, download, unpack, erofs seconds of one cold CLI pull into a fresh store. */
    private double[] airlockPull(Path work, String ref) {
        Path cache = work.resolve("airlock-cache");
        HostFiles.deleteTree(cache);
        List<String> argv = List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dairlock.home=" + env.shared.home(),
                "-cp",
                System.getProperty("java.class.path"),
                "dev.airlock.cli.Main",
                "image",
                "pull",
                ref);
        ProcessBuilder pb = new ProcessBuilder(argv).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("AIRLOCK_CACHE_DIR", cache.toString());
        pb.environment().put("AIRLOCK_DATA_DIR", work.resolve("airlock-data").toString());
        long start = System.nanoTime();
        long downloaded = 0;
        long packing = 0;
        try {
            Process p = pb.start();
            StringBuilder err = new StringBuilder();
            try (BufferedReader r =
                    new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    long now = System.nanoTime();
                    err.append(line).append('\n');
                    if (line.contains(": downloaded ")) {
                        downloaded = now;
                    } else if (line.endsWith(": packing erofs")) {
                        packing = now;
                    }
                }
            }
            if (p.waitFor() != 0) {
                throw new IllegalStateException("airlock image pull failed:\n" + err);
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        long end = System.nanoTime();
        HostFiles.deleteTree(cache);
        return new double[] {
            secs(end - start), secs(downloaded - start), secs(packing - downloaded), secs(end - packing)
        };
    }

    /** skopeo copy seconds, umoci unpack seconds, into fresh directories. */
    private static double[] skopeoUmoci(Path work, String ref) {
        Path layout = work.resolve("skopeo-layout");
        Path bundle = work.resolve("umoci-bundle");
        HostFiles.deleteTree(layout);
        HostFiles.deleteTree(bundle);
        long t0 = System.nanoTime();
        HostCommand.check(List.of(
                "skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + ref, "oci:" + layout + ":v1"));
        long t1 = System.nanoTime();
        HostCommand.check(List.of("umoci", "unpack", "--image", layout + ":v1", bundle.toString()));
        long t2 = System.nanoTime();
        HostFiles.deleteTree(layout);
        HostFiles.deleteTree(bundle);
        return new double[] {secs(t1 - t0), secs(t2 - t1)};
    }

    /** The base image's tree in four layers: usr/lib, usr/share, the rest, then a small change with a whiteout. */
    private static Path buildImage(Path work) throws IOException {
        Path base = new dev.airlock.image.ImageStore(dev.airlock.host.AirlockDirs.fromEnvironment())
                .find("base")
                .orElseThrow(() -> new IllegalStateException("no base image: run bin/airlock setup"))
                .file();
        Path mnt = Files.createDirectories(work.resolve("base-mnt"));
        HostCommand.check(List.of("mount", "-t", "erofs", "-o", "loop,ro", base.toString(), mnt.toString()));
        try {
            BenchEnv.LOG.step("building a 4-layer image from the base image's tree (umoci gzips it once)");
            List<String> tar = List.of("tar", "--format=pax", "--xattrs", "--numeric-owner", "-C", mnt.toString());
            HostCommand.check(concat(tar, "-cf", work.resolve("l1.tar").toString(), "./usr/lib"));
            HostCommand.check(concat(tar, "-cf", work.resolve("l2.tar").toString(), "./usr/share"));
            HostCommand.check(concat(
                    tar,
                    "--exclude=./usr/lib",
                    "--exclude=./usr/share",
                    "-cf",
                    work.resolve("l3.tar").toString(),
                    "."));
        } finally {
            HostCommand.check(List.of("umount", mnt.toString()));
        }
        Path l4 = Files.createDirectories(work.resolve("l4/etc"));
        Files.writeString(l4.resolve("bench-layer"), "the fourth layer\n");
        Files.createDirectories(work.resolve("l4/usr/share/doc"));
        Files.createFile(work.resolve("l4/usr/share/doc/.wh.bash"));
        HostCommand.check(List.of(
                "tar",
                "--format=pax",
                "--numeric-owner",
                "-C",
                work.resolve("l4").toString(),
                "-cf",
                work.resolve("l4.tar").toString(),
                "."));
        Path layout = work.resolve("layout");
        HostCommand.check(List.of("umoci", "init", "--layout", layout.toString()));
        HostCommand.check(List.of("umoci", "new", "--image", layout + ":v1"));
        for (int i = 1; i <= 4; i++) {
            HostCommand.check(List.of(
                    "umoci",
                    "raw",
                    "add-layer",
                    "--image",
                    layout + ":v1",
                    work.resolve("l" + i + ".tar").toString()));
        }
        HostCommand.check(List.of("umoci", "config", "--image", layout + ":v1", "--config.cmd", "/bin/bash"));
        return layout;
    }

    private static long uncompressedMiB(Path work) {
        long sum = 0;
        for (int i = 1; i <= 4; i++) {
            try {
                sum += Files.size(work.resolve("l" + i + ".tar"));
            } catch (IOException e) {
                // reported as what was found
            }
        }
        return sum >> 20;
    }

    private static List<String> concat(List<String> head, String... tail) {
        List<String> out = new ArrayList<>(head);
        out.addAll(List.of(tail));
        return out;
    }

    private static double secs(long nanos) {
        return nanos / 1e9;
    }

    /** Debian's docker-registry on a free loopback port, its storage in the run's directory. */
    private record Registry(Process process, int port) implements AutoCloseable {
        static Registry start(Path work) throws Exception {
            int port;
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                port = s.getLocalPort();
            }
            Path config = work.resolve("registry.yml");
            Files.writeString(
                    config,
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: "
                            + work.resolve("registry") + "\nhttp:\n  addr: 127.0.0.1:" + port + "\n");
            Process p = new ProcessBuilder("docker-registry", "serve", config.toString())
                    .redirectErrorStream(true)
                    .start();
            CompletableFuture<Boolean> up = new CompletableFuture<>();
            Thread.ofPlatform().daemon().start(() -> {
                try (BufferedReader r =
                        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        if (line.contains("listening on 127.0.0.1:" + port)) {
                            up.complete(true);
                        }
                    }
                } catch (IOException e) {
                    // ended
                }
                up.complete(false);
            });
            if (!up.get(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException("docker-registry did not start");
            }
            return new Registry(p, port);
        }

        String host() {
            return "127.0.0.1:" + port;
        }

        @Override
        public void close() {
            process.destroy();
        }
    }
}
