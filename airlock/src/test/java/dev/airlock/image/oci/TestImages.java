package dev.airlock.image.oci;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Images the tests build from trees of their own, with the real tools: GNU tar writes the layers
 * (pax headers, xattrs), umoci assembles an OCI layout and sets the config, skopeo pushes. The
 * trees hold what an unpacker must get right: several layers, a whiteout, an opaque directory, a
 * hard link, a setuid file, a symlink, a file capability, owners other than root.
 */
final class TestImages {
    private TestImages() {}

    static String run(String... argv) {
        return HostCommand.check(List.of(argv));
    }

    /**
     * An OCI layout {@code dir} with image {@code tag}: layer 1 is a busybox system, layer 2 the
     * interesting changes, layer 3 one more file; config with Env, WorkingDir, User, Entrypoint,
     * Cmd, a label and an exposed port.
     */
    static Path buildLayout(Path work, String tag) throws IOException {
        Path layout = work.resolve("layout");
        if (!Files.isDirectory(layout)) {
            run("umoci", "init", "--layout", layout.toString());
        }
        run("umoci", "new", "--image", layout + ":" + tag);
        run(
                "umoci",
                "raw",
                "add-layer",
                "--image",
                layout + ":" + tag,
                baseLayer(work).toString());
        run(
                "umoci",
                "raw",
                "add-layer",
                "--image",
                layout + ":" + tag,
                changesLayer(work).toString());
        Path l3 = Files.createDirectories(work.resolve("l3/extra"));
        Files.writeString(l3.resolve("third"), "third layer\n");
        run(
                "umoci",
                "raw",
                "add-layer",
                "--image",
                layout + ":" + tag,
                tar(work, "l3", "l3.tar", false).toString());
        run(
                "umoci",
                "config",
                "--image",
                layout + ":" + tag,
                "--config.env",
                "GREETING=hello from the image",
                "--config.env",
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "--config.workingdir",
                "/data",
                "--config.user",
                "1000",
                "--config.entrypoint",
                "/bin/sh",
                "--config.cmd",
                "-c",
                "--config.cmd",
                "echo started",
                "--config.label",
                "org.example.purpose=airlock-test",
                "--config.exposedports",
                "8080/tcp");
        return layout;
    }

    /** Layer 1: busybox and its applets, passwd/group, files later layers delete or hide. */
    static Path baseLayer(Path work) throws IOException {
        Path t = work.resolve("l1");
        if (Files.exists(work.resolve("l1.tar"))) {
            return work.resolve("l1.tar");
        }
        Files.createDirectories(t.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), t.resolve("bin/busybox"));
        for (String applet : run("/bin/busybox", "--list").split("\n")) {
            if (!applet.isBlank() && !applet.equals("busybox")) {
                Files.createSymbolicLink(t.resolve("bin/" + applet.strip()), Path.of("busybox"));
            }
        }
        Files.createDirectories(t.resolve("etc"));
        Files.writeString(t.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        Files.writeString(t.resolve("etc/group"), "root:x:0:\n");
        Files.createDirectories(t.resolve("opq/sub"));
        Files.writeString(t.resolve("opq/old"), "lower\n");
        Files.writeString(t.resolve("opq/sub/deep"), "lower\n");
        Files.createDirectories(t.resolve("gone"));
        Files.writeString(t.resolve("gone/file"), "bye\n");
        Files.createDirectories(t.resolve("data"));
        Files.writeString(t.resolve("data/keep"), "kept\n");
        Files.writeString(t.resolve("data/remove-me"), "removed by a whiteout\n");
        return tar(work, "l1", "l1.tar", false);
    }

    /**
     * Layer 2: a whiteout of a file and of a directory, an opaque directory with a new file, a
     * hard link, a setuid-root binary, a capability binary, a relative symlink, a file owned by
     * 1234:5678 with mode 0640, a sticky directory.
     */
    static Path changesLayer(Path work) throws IOException {
        if (Files.exists(work.resolve("l2.tar"))) {
            return work.resolve("l2.tar");
        }
        Path t = work.resolve("l2");
        Files.createDirectories(t.resolve("opq"));
        Files.writeString(t.resolve("opq/fresh"), "upper\n");
        Files.createFile(t.resolve("opq/.wh..wh..opq"));
        Files.createDirectories(t.resolve("data"));
        Files.createFile(t.resolve("data/.wh.remove-me"));
        Files.createFile(t.resolve(".wh.gone"));
        Files.createDirectories(t.resolve("tools/cap"));
        Files.writeString(t.resolve("tools/target"), "linked\n");
        Files.createLink(t.resolve("tools/hardlink"), t.resolve("tools/target"));
        Files.copy(Path.of("/bin/busybox"), t.resolve("tools/suid"));
        run("chmod", "4755", t.resolve("tools/suid").toString());
        // named busybox so that busybox runs its first argument as the applet
        Files.copy(Path.of("/bin/busybox"), t.resolve("tools/cap/busybox"));
        run("setcap", "cap_net_raw+ep", t.resolve("tools/cap/busybox").toString());
        Files.createSymbolicLink(t.resolve("tools/link"), Path.of("../data/keep"));
        Files.writeString(t.resolve("tools/owned"), "owned\n");
        run("chown", "1234:5678", t.resolve("tools/owned").toString());
        Files.setPosixFilePermissions(t.resolve("tools/owned"), PosixFilePermissions.fromString("rw-r-----"));
        Files.createDirectories(t.resolve("shared"));
        run("chmod", "1777", t.resolve("shared").toString());
        return tar(work, "l2", "l2.tar", true);
    }

    /** GNU tar of a tree, numeric owners, pax format (xattrs when asked: the capability). */
    static Path tar(Path work, String tree, String name, boolean xattrs) {
        List<String> argv = new ArrayList<>(List.of(
                "tar",
                "--format=pax",
                "--numeric-owner",
                "-C",
                work.resolve(tree).toString(),
                "-cf",
                work.resolve(name).toString()));
        if (xattrs) {
            argv.addAll(1, List.of("--xattrs", "--xattrs-include=security.capability"));
        }
        argv.add(".");
        HostCommand.check(argv);
        return work.resolve(name);
    }

    /** Pushes image {@code tag} of an OCI layout to {@code dest} (docker://...) with skopeo. */
    static void push(Path layout, String tag, String dest, String... extra) {
        List<String> argv = new ArrayList<>(List.of("skopeo", "copy", "--quiet", "--dest-tls-verify=false"));
        argv.addAll(List.of(extra));
        argv.add("oci:" + layout + ":" + tag);
        argv.add("docker://" + dest);
        HostCommand.check(argv);
    }

    /**
     * A hand-made OCI layout for the images the tools will not make: chosen compression (zstd),
     * an arm64 platform, a layer that escapes, a config that lies about a layer. Each layer is a
     * tar file, compressed here with the real gzip or zstd programs.
     */
    static final class Layout {
        private final Path dir;
        private final List<String> manifests = new ArrayList<>();

        Layout(Path dir) throws IOException {
            this.dir = dir;
            Files.createDirectories(dir.resolve("blobs/sha256"));
            Files.writeString(dir.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        }

        Path dir() {
            return dir;
        }

        /** Adds an image; {@code compression} is gzip, zstd or none; returns its manifest digest. */
        String image(String tag, String arch, String compression, List<Path> layerTars, List<String> diffIdsOverride)
                throws IOException {
            StringBuilder layers = new StringBuilder();
            StringBuilder diffIds = new StringBuilder();
            int i = 0;
            for (Path tar : layerTars) {
                String diffId = "sha256:" + sha256(Files.readAllBytes(tar));
                if (i < diffIdsOverride.size()) {
                    diffId = diffIdsOverride.get(i);
                }
                Path blob = tar;
                String type = MediaTypes.OCI_LAYER;
                if (compression.equals("gzip")) {
                    HostCommand.check(List.of("sh", "-c", "gzip -n -c \"$1\" > \"$1.gz\"", "sh", tar.toString()));
                    blob = Path.of(tar + ".gz");
                    type = MediaTypes.OCI_LAYER_GZIP;
                } else if (compression.equals("zstd")) {
                    HostCommand.check(List.of("zstd", "-q", "-f", "-o", tar + ".zst", tar.toString()));
                    blob = Path.of(tar + ".zst");
                    type = MediaTypes.OCI_LAYER_ZSTD;
                }
                String digest = put(Files.readAllBytes(blob));
                layers.append(i > 0 ? "," : "")
                        .append("{\"mediaType\":\"" + type + "\",\"digest\":\"" + digest + "\",\"size\":"
                                + Files.size(blob) + "}");
                diffIds.append(i > 0 ? "," : "").append('"').append(diffId).append('"');
                i++;
            }
            String config = "{\"architecture\":\"" + arch + "\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\"]},"
                    + "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + diffIds + "]}}";
            byte[] configBytes = config.getBytes(StandardCharsets.UTF_8);
            String configDigest = put(configBytes);
            String manifest = "{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_MANIFEST + "\",\"config\":{"
                    + "\"mediaType\":\"" + MediaTypes.OCI_CONFIG + "\",\"digest\":\"" + configDigest + "\",\"size\":"
                    + configBytes.length + "},\"layers\":[" + layers + "]}";
            byte[] manifestBytes = manifest.getBytes(StandardCharsets.UTF_8);
            String digest = put(manifestBytes);
            manifests.add("{\"mediaType\":\"" + MediaTypes.OCI_MANIFEST + "\",\"digest\":\"" + digest + "\",\"size\":"
                    + manifestBytes.length + ",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch + "\"},"
                    + "\"annotations\":{\"" + ImageImport.REF_NAME + "\":\"" + tag + "\"}}");
            writeIndex();
            return digest;
        }

        /** Adds an index over earlier manifests (by their entries' digests) as {@code tag}. */
        void index(String tag, List<String> entries) throws IOException {
            String body = "{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_INDEX + "\",\"manifests\":["
                    + String.join(",", entries) + "]}";
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            String digest = put(b);
            manifests.add("{\"mediaType\":\"" + MediaTypes.OCI_INDEX + "\",\"digest\":\"" + digest + "\",\"size\":"
                    + b.length + ",\"annotations\":{\"" + ImageImport.REF_NAME + "\":\"" + tag + "\"}}");
            writeIndex();
        }

        /** The index entry (with platform) of an image added earlier, by manifest digest. */
        String entry(String manifestDigest) {
            return manifests.stream()
                    .filter(m -> m.contains(manifestDigest))
                    .findFirst()
                    .orElseThrow()
                    .replaceAll(",\"annotations\":\\{[^}]*}", "");
        }

        private void writeIndex() throws IOException {
            Files.writeString(
                    dir.resolve("index.json"),
                    "{\"schemaVersion\":2,\"manifests\":[" + String.join(",", manifests) + "]}");
        }

        private String put(byte[] b) throws IOException {
            String hex = sha256(b);
            Files.write(dir.resolve("blobs/sha256/" + hex), b);
            return "sha256:" + hex;
        }
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of()
                    .formatHex(
                            java.security.MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The shared source tree with a private cache (an image store of the test's own) and data. */
    static AirlockDirs privateStore(Path work) throws IOException {
        return new AirlockDirs(
                AirlockDirs.fromEnvironment().home(),
                work.resolve("cache"),
                work.resolve("data"),
                Files.createTempDirectory(Path.of("/tmp"), "alr"));
    }

    /** Everything in the store but its work directory and lock files, sorted. */
    static List<String> storeFiles(AirlockDirs dirs) {
        Path images = dirs.images();
        if (!Files.isDirectory(images)) {
            return List.of();
        }
        try (java.util.stream.Stream<Path> s = Files.walk(images)) {
            return s.filter(p -> !p.equals(images) && !p.startsWith(images.resolve("tmp")))
                    .filter(p -> !p.getFileName().toString().startsWith("."))
                    .map(p -> images.relativize(p).toString())
                    .sorted()
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
