package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code airlock image import} of what the real tools write: an OCI layout directory (umoci), a
 * tar of one, and a {@code podman save} archive (podman with a private vfs storage pulls the image
 * from a loopback registry and saves it).
 */
class ImageImportTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static Path work;
    private static Path layout;
    private static AirlockDirs dirs;
    private static Cli cli;

    @BeforeAll
    static void setUp() throws Exception {
        work = Files.createTempDirectory("airlock-import-test");
        layout = TestImages.buildLayout(work, "v1");
        TestImages.run("umoci", "tag", "--image", layout + ":v1", "second");
        dirs = TestImages.privateStore(work);
        cli = new Cli(dirs);
    }

    @AfterAll
    static void tearDown() {
        TestHost.cleanUp(dirs); // its daemon too, which the CLI started on demand
        HostFiles.deleteTree(work);
    }

    @Test
    void anOciLayoutDirectoryAndItsTarImportByTag() throws Exception {
        Cli.Result many = cli.run("image", "import", layout.toString());
        assertThat(many.exit()).isEqualTo(125);
        assertThat(many.err())
                .contains("holds 2 images")
                .contains(":TAG")
                .contains("v1")
                .contains("second");

        Cli.Result dir = cli.run("image", "import", "-t", "from-dir", layout + ":v1");
        assertThat(dir.exit()).as(dir.err()).isZero();
        JsonNode image = JSON.readTree(cli.run("image", "inspect", "from-dir").out());
        assertThat(image.path("source").path("kind").asString()).isEqualTo("import");
        assertThat(image.path("config").path("workingDir").asString()).isEqualTo("/data");
        ImagePullTest.withMounted(Path.of(image.path("file").asString().replace("file://", "")), root -> {
            assertThat(ImagePullTest.mode(root.resolve("tools/suid"))).isEqualTo(04755);
            assertThat(root.resolve("data/remove-me")).doesNotExist();
            assertThat(HostCommand.check(
                            List.of("getcap", root.resolve("tools/cap/busybox").toString())))
                    .contains("cap_net_raw=ep");
        });

        Path tar = work.resolve("layout.tar");
        TestImages.run("tar", "-C", layout.toString(), "-cf", tar.toString(), ".");
        Cli.Result fromTar = cli.run("image", "import", tar + ":second");
        assertThat(fromTar.exit()).as(fromTar.err()).isZero();
        assertThat(fromTar.out()).startsWith("layout:second ");
        assertThat(JSON.readTree(cli.run("image", "inspect", "layout:second").out())
                        .path("id")
                        .asString())
                .isEqualTo(image.path("id").asString());
    }

    @Test
    void aPodmanSaveArchiveImports() throws Exception {
        Path conf = work.resolve("containers.conf");
        Files.writeString(
                conf,
                "[containers]\ndefault_ulimits = [\"nofile=1024:20000\"]\n[engine]\n"
                        + "cgroup_manager = \"cgroupfs\"\n");
        try (TestRegistry registry = TestRegistry.start(work, work.resolve("registry"), "")) {
            TestImages.push(layout, "v1", registry.host() + "/test/podman:v1");
            String ref = registry.host() + "/test/podman:v1";
            // podman refuses a runroot longer than 50 characters
            Path runroot = Files.createTempDirectory(Path.of("/tmp"), "podrun");
            List<String> podman = List.of(
                    "podman",
                    "--root",
                    work.resolve("podman/root").toString(),
                    "--runroot",
                    runroot.toString(),
                    "--storage-driver",
                    "vfs");
            Map<String, String> env = Map.of("CONTAINERS_CONF", conf.toString());
            check(HostCommand.run(concat(podman, "pull", "--quiet", "--tls-verify=false", ref), null, null, env));
            Path archive = work.resolve("podman-save.tar");
            check(HostCommand.run(
                    concat(podman, "save", "--format", "docker-archive", "-o", archive.toString(), ref),
                    null,
                    null,
                    env));
            HostFiles.deleteTree(runroot);
            Cli.Result r = cli.run("image", "import", archive.toString());
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).startsWith(ref + " ");
            JsonNode image = JSON.readTree(cli.run("image", "inspect", ref).out());
            assertThat(image.path("config").path("entrypoint").toString()).isEqualTo("[\"/bin/sh\"]");
            assertThat(image.path("source").path("layers")).hasSize(3);
            ImagePullTest.withMounted(Path.of(image.path("file").asString().replace("file://", "")), root -> {
                assertThat(ImagePullTest.attr(root.resolve("tools/owned"), "uid"))
                        .isEqualTo(1234);
                assertThat(root.resolve("opq/old")).doesNotExist();
                assertThat(root.resolve("opq/fresh")).exists();
            });
        }
    }

    @Test
    void badArchivesAreClearErrorsThatStoreNothing() throws Exception {
        List<String> before = storeFiles();
        Cli.Result missing = cli.run("image", "import", work.resolve("nope.tar").toString());
        assertThat(missing.exit()).isEqualTo(125);
        assertThat(missing.err()).contains("no such file or directory");
        Cli.Result tag = cli.run("image", "import", layout + ":no-such-tag");
        assertThat(tag.exit()).isEqualTo(125);
        assertThat(tag.err()).contains("no tag 'no-such-tag'").contains("v1");
        Path junk = work.resolve("junk.tar");
        Files.writeString(junk, "this is not a tar archive at all, just text long enough ".repeat(20));
        Cli.Result notTar = cli.run("image", "import", junk.toString());
        assertThat(notTar.exit()).isEqualTo(125);
        assertThat(notTar.err()).contains("is not an image layout").doesNotContain("Exception");

        // a layout whose layer blob was damaged after it was written
        Path damaged = work.resolve("damaged");
        TestImages.run("cp", "-a", layout.toString(), damaged.toString());
        JsonNode index = JSON.readTree(Files.readString(damaged.resolve("index.json")));
        String manifest =
                index.path("manifests").path(0).path("digest").asString().substring(7);
        String layer = JSON.readTree(Files.readAllBytes(damaged.resolve("blobs/sha256/" + manifest)))
                .path("layers")
                .path(1)
                .path("digest")
                .asString()
                .substring(7);
        try (RandomAccessFile f =
                new RandomAccessFile(damaged.resolve("blobs/sha256/" + layer).toFile(), "rw")) {
            f.seek(100);
            int b = f.read();
            f.seek(100);
            f.write(b ^ 0x55);
        }
        Cli.Result corrupt = cli.run("image", "import", damaged + ":v1");
        assertThat(corrupt.exit()).isEqualTo(125);
        assertThat(corrupt.err()).contains("is corrupt").contains("nothing was stored");
        assertThat(storeFiles()).isEqualTo(before);
    }

    private static List<String> storeFiles() {
        return TestImages.storeFiles(dirs);
    }

    private static List<String> concat(List<String> head, String... tail) {
        List<String> out = new java.util.ArrayList<>(head);
        out.addAll(List.of(tail));
        return out;
    }

    private static void check(HostCommand.Result r) {
        assertThat(r.exitCode()).as(r.output()).isZero();
    }
}
