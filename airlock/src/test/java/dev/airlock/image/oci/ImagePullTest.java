package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code airlock image pull} against a real registry (Debian's docker-registry on loopback) holding
 * images built by the test with GNU tar, umoci and skopeo; the CLI runs as a user runs it, with a
 * private image store, and the resulting erofs image is mounted on the host and checked file by
 * file. Bad input must fail with a clear error and leave the store as it was.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ImagePullTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static Path work;
    private static TestRegistry registry;
    private static AirlockDirs dirs;
    private static Cli cli;
    private static Path layout;

    @BeforeAll
    static void setUp() throws Exception {
        work = Files.createTempDirectory("airlock-pull-test");
        registry = TestRegistry.start(work, work.resolve("registry"), "");
        layout = TestImages.buildLayout(work, "v1");
        TestImages.push(layout, "v1", registry.host() + "/test/img:v1");
        // v2: v1 plus one layer, so the two share three layers
        TestImages.run("umoci", "tag", "--image", layout + ":v1", "v2");
        Path l4 = Files.createDirectories(work.resolve("l4/v2"));
        Files.writeString(l4.resolve("only-in-v2"), "v2\n");
        TestImages.run(
                "umoci",
                "raw",
                "add-layer",
                "--image",
                layout + ":v2",
                TestImages.tar(work, "l4", "l4.tar", false).toString());
        TestImages.push(layout, "v2", registry.host() + "/test/img:v2");
        dirs = TestImages.privateStore(work);
        cli = new Cli(dirs);
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        TestHost.cleanUp(dirs); // its daemon too, which the CLI started on demand
        HostFiles.deleteTree(work);
    }

    @Test
    @Order(1)
    void pullUnpacksEveryLayerIntoOneErofsImage() throws Exception {
        Cli.Result r = cli.run("image", "pull", registry.host() + "/test/img:v1");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).startsWith(registry.host() + "/test/img:v1 ");
        assertThat(r.err())
                .contains("layer 1/3 sha256:")
                .contains("layer 3/3 sha256:")
                .contains("downloaded")
                .contains("unpacked");
        JsonNode inspect = JSON.readTree(
                cli.run("image", "inspect", registry.host() + "/test/img:v1").out());
        JsonNode config = inspect.path("config");
        assertThat(config.path("env").toString()).contains("GREETING=hello from the image");
        assertThat(config.path("workingDir").asString()).isEqualTo("/data");
        assertThat(config.path("user").asString()).isEqualTo("1000");
        assertThat(config.path("entrypoint").toString()).isEqualTo("[\"/bin/sh\"]");
        assertThat(config.path("cmd").toString()).isEqualTo("[\"-c\",\"echo started\"]");
        assertThat(config.path("labels").path("org.example.purpose").asString()).isEqualTo("airlock-test");
        assertThat(config.path("exposedPorts").toString()).contains("8080/tcp");
        assertThat(inspect.path("source").path("layers")).hasSize(3);
        assertThat(inspect.path("source").path("kind").asString()).isEqualTo("pull");

        withMounted(Path.of(inspect.path("file").asString().replace("file://", "")), root -> {
            assertThat(root.resolve("bin/busybox")).isRegularFile();
            assertThat(Files.readSymbolicLink(root.resolve("bin/sh"))).isEqualTo(Path.of("busybox"));
            assertThat(mode(root.resolve("tools/suid"))).isEqualTo(04755);
            assertThat(attr(root.resolve("tools/suid"), "uid")).isEqualTo(0);
            assertThat(mode(root.resolve("tools/owned"))).isEqualTo(0640);
            assertThat(attr(root.resolve("tools/owned"), "uid")).isEqualTo(1234);
            assertThat(attr(root.resolve("tools/owned"), "gid")).isEqualTo(5678);
            assertThat(attr(root.resolve("tools/hardlink"), "ino"))
                    .isEqualTo(attr(root.resolve("tools/target"), "ino"));
            assertThat(attr(root.resolve("tools/target"), "nlink")).isEqualTo(2);
            assertThat(Files.readSymbolicLink(root.resolve("tools/link"))).isEqualTo(Path.of("../data/keep"));
            assertThat(HostCommand.check(
                            List.of("getcap", root.resolve("tools/cap/busybox").toString())))
                    .contains("cap_net_raw=ep");
            assertThat(mode(root.resolve("shared"))).isEqualTo(01777);
            // whiteouts and the opaque directory
            assertThat(root.resolve("data/keep")).hasContent("kept");
            assertThat(root.resolve("data/remove-me")).doesNotExist();
            assertThat(root.resolve("gone")).doesNotExist();
            assertThat(root.resolve("opq/old")).doesNotExist();
            assertThat(root.resolve("opq/sub")).doesNotExist();
            assertThat(root.resolve("opq/fresh")).hasContent("upper");
            assertThat(root.resolve("opq/.wh..wh..opq")).doesNotExist();
            assertThat(root.resolve("extra/third")).hasContent("third layer");
            // what every Airlock image has
            assertThat(root.resolve("etc/passwd")).content().contains("airlock:x:1000:1000:");
            assertThat(root.resolve("etc/group")).content().contains("airlock:x:1000:");
            assertThat(attr(root.resolve("home/airlock"), "uid")).isEqualTo(1000);
            assertThat(mode(root.resolve("tmp"))).isEqualTo(01777);
            assertThat(root.resolve("proc")).isDirectory();
        });
    }

    @Test
    @Order(2)
    void aSecondPullFindsTheImageAndDownloadsNothing() {
        List<String> before = storeFiles();
        Cli.Result r = cli.run("image", "pull", registry.host() + "/test/img:v1");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("up to date").doesNotContain("downloaded");
        assertThat(storeFiles()).isEqualTo(before);
    }

    @Test
    @Order(3)
    void imagesShareTheirCommonLayersAndLsShowsIt() throws Exception {
        Cli.Result r = cli.run("image", "pull", registry.host() + "/test/img:v2");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("layer 1/4")
                .contains("already in the store")
                .contains("layer 4/4");
        assertThat(r.err().lines().filter(l -> l.contains(": downloaded "))).hasSize(1);
        JsonNode ls = JSON.readTree(cli.run("image", "ls", "--json").out());
        assertThat(ls).hasSize(2);
        for (JsonNode row : ls) {
            assertThat(row.path("sharedBytes").asLong()).isPositive();
            assertThat(row.path("uniqueBytes").asLong()).isPositive();
            assertThat(row.path("origin").asString()).isEqualTo("pull");
        }
        Cli.Result table = cli.run("image", "ls");
        assertThat(table.out()).contains("SHARED").contains("UNIQUE").contains("/test/img:v2");
    }

    @Test
    @Order(4)
    void anIndexResolvesToLinuxAmd64AndPlatformPicksAnother() throws Exception {
        TestImages.Layout l = new TestImages.Layout(work.resolve("multi"));
        Path armTree = Files.createDirectories(work.resolve("arm/etc"));
        Files.writeString(armTree.resolve("arch"), "arm64\n");
        Path amdTree = Files.createDirectories(work.resolve("amd/etc"));
        Files.writeString(amdTree.resolve("arch"), "amd64\n");
        String arm = l.image("arm", "arm64", "gzip", List.of(TestImages.tar(work, "arm", "arm.tar", false)), List.of());
        String amd = l.image("amd", "amd64", "zstd", List.of(TestImages.tar(work, "amd", "amd.tar", false)), List.of());
        l.index("multi", List.of(l.entry(arm), l.entry(amd)));
        TestImages.push(l.dir(), "multi", registry.host() + "/test/multi:latest", "--all");

        Cli.Result r = cli.run("image", "pull", registry.host() + "/test/multi");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode amdImage = JSON.readTree(cli.run("image", "inspect", registry.host() + "/test/multi:latest")
                .out());
        assertThat(amdImage.path("source").path("platform").asString()).isEqualTo("linux/amd64");
        assertThat(amdImage.path("source")
                        .path("layers")
                        .path(0)
                        .path("mediaType")
                        .asString())
                .isEqualTo(MediaTypes.OCI_LAYER_ZSTD);
        withMounted(
                Path.of(amdImage.path("file").asString().replace("file://", "")),
                root -> assertThat(root.resolve("etc/arch")).hasContent("amd64"));

        Cli.Result armPull = cli.run(
                "image", "pull", "--platform", "linux/arm64", "-t", "multi-arm", registry.host() + "/test/multi");
        assertThat(armPull.exit()).as(armPull.err()).isZero();
        assertThat(JSON.readTree(cli.run("image", "inspect", "multi-arm").out())
                        .path("source")
                        .path("platform")
                        .asString())
                .isEqualTo("linux/arm64");

        List<String> before = storeFiles();
        Cli.Result none = cli.run("image", "pull", "--platform", "linux/s390x", registry.host() + "/test/multi");
        assertThat(none.exit()).isEqualTo(125);
        assertThat(none.err())
                .contains("no image for linux/s390x")
                .contains("linux/arm64")
                .contains("linux/amd64");
        assertThat(storeFiles()).isEqualTo(before);
    }

    @Test
    @Order(5)
    void unknownImagesTagsAndRegistriesAreClearErrorsThatStoreNothing() throws Exception {
        List<String> before = storeFiles();
        Cli.Result tag = cli.run("image", "pull", registry.host() + "/test/img:no-such-tag");
        assertThat(tag.exit()).isEqualTo(125);
        assertThat(tag.err())
                .contains("no image " + registry.host() + "/test/img:no-such-tag")
                .contains("MANIFEST_UNKNOWN")
                .doesNotContain("Exception");
        Cli.Result repo = cli.run("image", "pull", registry.host() + "/no/such:v1");
        assertThat(repo.exit()).isEqualTo(125);
        assertThat(repo.err()).contains("no image " + registry.host() + "/no/such:v1");
        Cli.Result digest = cli.run("image", "pull", registry.host() + "/test/img@sha256:" + "0".repeat(64));
        assertThat(digest.exit()).isEqualTo(125);
        assertThat(digest.err()).contains("no image");
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        Cli.Result unreachable = cli.run("image", "pull", "127.0.0.1:" + closed + "/test/img:v1");
        assertThat(unreachable.exit()).isEqualTo(125);
        assertThat(unreachable.err())
                .contains("cannot reach registry 127.0.0.1:" + closed)
                .doesNotContain("Exception");
        Cli.Result malformed = cli.run("image", "pull", "Not A Reference");
        assertThat(malformed.exit()).isEqualTo(125);
        assertThat(malformed.err()).contains("is not an image reference");
        Cli.Result remote = cli.run("image", "pull", "registry.invalid:5000/x:y");
        assertThat(remote.exit()).isEqualTo(125);
        assertThat(storeFiles()).isEqualTo(before);
        assertThat(leftovers()).isEmpty();
    }

    @Test
    @Order(6)
    void aCorruptBlobOrALyingConfigFailsAndStoresNothing() throws Exception {
        // a copy of v1 whose last layer's bytes are damaged in the registry's own storage
        TestImages.Layout l = new TestImages.Layout(work.resolve("bad"));
        Path big = Files.createDirectories(work.resolve("big"));
        Files.writeString(big.resolve("file"), "x".repeat(10_000));
        Path bigTar = TestImages.tar(work, "big", "big.tar", false);
        l.image("corrupt", "amd64", "gzip", List.of(bigTar), List.of());
        TestImages.push(l.dir(), "corrupt", registry.host() + "/test/corrupt:v1");
        JsonNode manifest = JSON.readTree(Files.readString(l.dir().resolve("index.json")));
        String mDigest = manifest.path("manifests").path(0).path("digest").asString();
        JsonNode m = JSON.readTree(Files.readAllBytes(l.dir().resolve("blobs/sha256/" + mDigest.substring(7))));
        Path data = registry.blobData(m.path("layers").path(0).path("digest").asString());
        try (RandomAccessFile f = new RandomAccessFile(data.toFile(), "rw")) {
            f.seek(20);
            int b = f.read();
            f.seek(20);
            f.write(b ^ 0xff);
        }
        List<String> before = storeFiles();
        Cli.Result corrupt = cli.run("image", "pull", registry.host() + "/test/corrupt:v1");
        assertThat(corrupt.exit()).isEqualTo(125);
        assertThat(corrupt.err())
                .contains("is corrupt")
                .contains("nothing was stored")
                .doesNotContain("Exception");
        assertThat(storeFiles()).isEqualTo(before);
        assertThat(leftovers()).isEmpty();

        // a config whose diff_id is not the layer's content
        // (another layer: the registry keeps one copy per digest, and that one is damaged now)
        Files.writeString(Files.createDirectories(work.resolve("small")).resolve("file"), "small\n");
        TestImages.Layout lie = new TestImages.Layout(work.resolve("lie"));
        lie.image(
                "lie",
                "amd64",
                "gzip",
                List.of(TestImages.tar(work, "small", "small.tar", false)),
                List.of("sha256:" + "ab".repeat(32)));
        TestImages.push(lie.dir(), "lie", registry.host() + "/test/lie:v1");
        Cli.Result lying = cli.run("image", "pull", registry.host() + "/test/lie:v1");
        assertThat(lying.exit()).isEqualTo(125);
        assertThat(lying.err()).contains("does not match the image config").doesNotContain("Exception");
        assertThat(storeFiles()).isEqualTo(before);
        assertThat(leftovers()).noneMatch(p -> p.contains("unpack-"));
    }

    @Test
    @Order(7)
    void layersThatEscapeTheRootAreRefusedAndStoreNothing() throws Exception {
        Path t = work.resolve("escape");
        Files.createDirectories(t.resolve("tree"));
        Files.writeString(t.resolve("tree/pwned"), "outside\n");
        // ../pwned, /tmp/pwned, and a symlink to / followed by a file through it
        Path dotdot = t.resolve("dotdot.tar");
        TestImages.run(
                "tar",
                "--format=pax",
                "-C",
                t.resolve("tree").toString(),
                "-cf",
                dotdot.toString(),
                "--transform",
                "s,^pwned,../../pwned,",
                "-P",
                "pwned");
        Path absolute = t.resolve("absolute.tar");
        TestImages.run(
                "tar",
                "--format=pax",
                "-C",
                t.resolve("tree").toString(),
                "-cf",
                absolute.toString(),
                "--transform",
                "s,^pwned,/tmp/airlock-escape-pwned,",
                "-P",
                "pwned");
        Path link = Files.createDirectories(t.resolve("link"));
        Files.createSymbolicLink(link.resolve("esc"), Path.of("/tmp"));
        Files.writeString(link.resolve("via"), "through the link\n");
        Path symlink = t.resolve("symlink.tar");
        TestImages.run(
                "tar",
                "--format=pax",
                "-C",
                link.toString(),
                "-cf",
                symlink.toString(),
                "--transform",
                "s,^via,esc/airlock-escape-via,",
                "esc",
                "via");
        Path relLink = Files.createDirectories(t.resolve("rel"));
        Files.createSymbolicLink(relLink.resolve("up"), Path.of("../../../../../../../../tmp"));
        Files.writeString(relLink.resolve("via"), "through the link\n");
        Path relative = t.resolve("relative.tar");
        TestImages.run(
                "tar",
                "--format=pax",
                "-C",
                relLink.toString(),
                "-cf",
                relative.toString(),
                "--transform",
                "s,^via,up/airlock-escape-rel,",
                "up",
                "via");
        assertThat(TestImages.run("tar", "-tvf", dotdot.toString())).contains("../../pwned");
        assertThat(TestImages.run("tar", "-tvPf", absolute.toString())).contains("/tmp/airlock-escape-pwned");

        List<String> before = storeFiles();
        Map<String, String> cases = Map.of(
                "dotdot", "escapes the image root with '..'",
                "absolute", "is an absolute path",
                "symlink", "escapes the image root through a symlink",
                "relative", "escapes the image root through a symlink");
        Map<String, Path> tars =
                Map.of("dotdot", dotdot, "absolute", absolute, "symlink", symlink, "relative", relative);
        for (Map.Entry<String, String> c : cases.entrySet()) {
            TestImages.Layout l = new TestImages.Layout(work.resolve("esc-" + c.getKey()));
            l.image(c.getKey(), "amd64", "gzip", List.of(TestImages.baseLayer(work), tars.get(c.getKey())), List.of());
            TestImages.push(l.dir(), c.getKey(), registry.host() + "/test/escape-" + c.getKey() + ":v1");
            Cli.Result r = cli.run("image", "pull", registry.host() + "/test/escape-" + c.getKey() + ":v1");
            assertThat(r.exit()).as(c.getKey()).isEqualTo(125);
            assertThat(r.err())
                    .as(c.getKey())
                    .contains(c.getValue())
                    .contains("refused")
                    .doesNotContain("Exception");
        }
        assertThat(Path.of("/tmp/airlock-escape-pwned")).doesNotExist();
        assertThat(Path.of("/tmp/airlock-escape-via")).doesNotExist();
        assertThat(Path.of("/tmp/airlock-escape-rel")).doesNotExist();
        assertThat(work.resolve("pwned")).doesNotExist();
        assertThat(storeFiles()).isEqualTo(before);
        assertThat(leftovers()).noneMatch(p -> p.contains("unpack-"));
    }

    @Test
    @Order(8)
    void anInterruptedDownloadIsResumedByTheNextPull() throws Exception {
        // 8 MiB that gzip cannot shrink, so the layer blob is that big
        Path r = Files.createDirectories(work.resolve("random"));
        byte[] noise = new byte[8 << 20];
        new Random(7).nextBytes(noise);
        Files.write(r.resolve("noise"), noise);
        TestImages.Layout l = new TestImages.Layout(work.resolve("resume"));
        l.image("big", "amd64", "gzip", List.of(TestImages.tar(work, "random", "random.tar", false)), List.of());
        TestImages.push(l.dir(), "big", registry.host() + "/test/big:v1");
        List<String> before = storeFiles();
        try (CuttingProxy proxy = new CuttingProxy(registry.port(), 3 << 20)) {
            Cli.Result cut = cli.run("image", "pull", "127.0.0.1:" + proxy.port() + "/test/big:v1");
            assertThat(cut.exit()).isEqualTo(125);
            assertThat(cut.err())
                    .contains("was interrupted after")
                    .contains("pull again to resume")
                    .doesNotContain("Exception");
        }
        assertThat(storeFiles()).isEqualTo(before);
        List<String> partials =
                leftovers().stream().filter(p -> p.endsWith(".partial")).toList();
        assertThat(partials).hasSize(1);

        Cli.Result resumed = cli.run("image", "pull", registry.host() + "/test/big:v1");
        assertThat(resumed.exit()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("resuming at");
        assertThat(leftovers()).noneMatch(p -> p.endsWith(".partial"));
    }

    @Test
    @Order(9)
    void rmThenPruneRemovesOnlyTheLayersNoImageUses() throws Exception {
        JsonNode v2 = JSON.readTree(
                cli.run("image", "inspect", registry.host() + "/test/img:v2").out());
        String onlyV2 = v2.path("source").path("layers").path(3).path("digest").asString();
        String sharedLayer =
                v2.path("source").path("layers").path(0).path("digest").asString();
        assertThat(cli.run("image", "rm", registry.host() + "/test/img:v2").exit())
                .isZero();
        Path content = dirs.images().resolve("content/sha256");
        assertThat(content.resolve(onlyV2.substring(7))).exists(); // rm keeps layers as a cache
        Cli.Result prune = cli.run("image", "prune");
        assertThat(prune.exit()).as(prune.err()).isZero();
        assertThat(prune.out()).contains("freed");
        assertThat(content.resolve(onlyV2.substring(7))).doesNotExist();
        assertThat(content.resolve(sharedLayer.substring(7))).exists();
        assertThat(cli.run("image", "inspect", registry.host() + "/test/img:v1").exit())
                .isZero();
        assertThat(leftovers()).isEmpty();
    }

    @Test
    @Order(10)
    void aPullKilledAtAnyStepLeavesAConsistentStoreAndTheNextPullFinishes() throws Exception {
        TestImages.Layout l = new TestImages.Layout(work.resolve("killed"));
        List<Path> tars = new java.util.ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Path t = Files.createDirectories(work.resolve("kill" + i));
            byte[] noise = new byte[4 << 20];
            new Random(i).nextBytes(noise);
            Files.write(t.resolve("noise"), noise);
            tars.add(TestImages.tar(work, "kill" + i, "kill" + i + ".tar", false));
        }
        l.image("killed", "amd64", "gzip", tars, List.of());
        String ref = registry.host() + "/test/killed:v1";
        TestImages.push(l.dir(), "killed", ref);
        for (String step : List.of("pulling ", ": downloaded ", ": unpacked ", ": packing erofs")) {
            Process p = cliProcess("image", "pull", ref);
            try (var err = new java.io.BufferedReader(new java.io.InputStreamReader(p.getErrorStream()))) {
                for (String line; (line = err.readLine()) != null; ) {
                    if (line.contains(step)) {
                        p.destroyForcibly(); // SIGKILL: no cleanup code runs
                        break;
                    }
                }
            }
            p.waitFor();
            Cli.Result ls = cli.run("image", "ls", "--json");
            assertThat(ls.exit()).as(step + ": " + ls.err()).isZero();
            for (JsonNode row : JSON.readTree(ls.out())) {
                Cli.Result inspect =
                        cli.run("image", "inspect", row.path("name").asString());
                assertThat(inspect.exit()).as(step + ": " + inspect.err()).isZero(); // verifies the erofs hash
            }
            cli.run("image", "rm", ref); // in case it got to the end before the kill landed
        }
        Cli.Result done = cli.run("image", "pull", ref);
        assertThat(done.exit()).as(done.err()).isZero();
        assertThat(cli.run("image", "inspect", ref).exit()).isZero();
        assertThat(cli.run("image", "prune").exit()).isZero();
        assertThat(leftovers()).isEmpty();
    }

    /** The CLI as its own process, for a test that kills it. */
    private static Process cliProcess(String... args) throws IOException {
        List<String> argv = new java.util.ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-Dairlock.home=" + dirs.home(),
                "-cp",
                System.getProperty("java.class.path"),
                "dev.airlock.cli.Main"));
        argv.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(argv).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("AIRLOCK_CACHE_DIR", dirs.cache().toString());
        pb.environment().put("AIRLOCK_DATA_DIR", dirs.data().toString());
        pb.environment().put("AIRLOCK_RUNTIME_DIR", dirs.runtime().toString());
        return pb.start();
    }

    // ---- helpers

    private static List<String> storeFiles() {
        return TestImages.storeFiles(dirs);
    }

    /** What the store's work directory holds (downloads kept for resuming, lock files aside). */
    private static List<String> leftovers() {
        Path tmp = dirs.images().resolve("tmp");
        if (!Files.isDirectory(tmp)) {
            return List.of();
        }
        try (Stream<Path> s = Files.walk(tmp)) {
            return s.filter(p -> !p.equals(tmp)
                            && !p.getFileName().toString().endsWith(".lock")
                            && !p.getFileName().toString().equals("downloads"))
                    .filter(p -> !tmp.resolve("downloads").equals(p.getParent())
                            || p.getFileName().toString().endsWith(".partial"))
                    .map(p -> tmp.relativize(p).toString())
                    .toList();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    interface MountedCheck {
        void check(Path root) throws Exception;
    }

    static void withMounted(Path erofs, MountedCheck check) throws Exception {
        Path mnt = Files.createTempDirectory("airlock-mnt");
        HostCommand.check(List.of("mount", "-t", "erofs", "-o", "loop,ro", erofs.toString(), mnt.toString()));
        try {
            check.check(mnt);
        } finally {
            HostCommand.check(List.of("umount", mnt.toString()));
            Files.delete(mnt);
        }
    }

    static int mode(Path p) throws IOException {
        return (int) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS) & 07777;
    }

    static long attr(Path p, String name) throws IOException {
        return ((Number) Files.getAttribute(p, "unix:" + name, LinkOption.NOFOLLOW_LINKS)).longValue();
    }

    /**
     * A fault that cannot be produced otherwise: a TCP proxy to the registry that closes each
     * connection after passing {@code limit} bytes back, as a network that drops mid-download.
     */
    static final class CuttingProxy implements AutoCloseable {
        private final ServerSocket server;

        CuttingProxy(int target, long limit) throws IOException {
            server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            Thread.ofVirtual().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket client = server.accept();
                        Socket upstream = new Socket(InetAddress.getLoopbackAddress(), target);
                        Thread.ofVirtual().start(() -> pipe(client, upstream, Long.MAX_VALUE));
                        Thread.ofVirtual().start(() -> pipe(upstream, client, limit));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        private static void pipe(Socket from, Socket to, long limit) {
            try (InputStream in = from.getInputStream();
                    OutputStream out = to.getOutputStream()) {
                byte[] buf = new byte[16384];
                long sent = 0;
                for (int n; (n = in.read(buf)) > 0; ) {
                    int allowed = (int) Math.min(n, limit - sent);
                    out.write(buf, 0, allowed);
                    sent += allowed;
                    if (sent >= limit) {
                        break;
                    }
                }
            } catch (IOException e) {
                // either side went away
            } finally {
                try {
                    from.close();
                    to.close();
                } catch (IOException e) {
                    // closed
                }
            }
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
