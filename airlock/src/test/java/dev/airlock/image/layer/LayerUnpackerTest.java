package dev.airlock.image.layer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.image.ImageException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The unpacker on tar streams written byte by byte here (what no well-behaved tool writes: names
 * that escape, a binary xattr, a hard link to nothing) and on GNU tar's output, applied to a
 * directory on the host.
 */
class LayerUnpackerTest {
    private Path dir;
    private Path root;

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("airlock-unpack-test");
        root = Files.createDirectory(dir.resolve("root"));
    }

    @AfterEach
    void tearDown() {
        HostFiles.deleteTree(dir);
    }

    /** Writes ustar headers (and a pax header when there are records) for the given entries. */
    static final class TarBuilder {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        TarBuilder entry(String name, char type, int mode, String content, String link, Map<String, byte[]> pax) {
            if (!pax.isEmpty()) {
                ByteArrayOutputStream records = new ByteArrayOutputStream();
                for (Map.Entry<String, byte[]> e : pax.entrySet()) {
                    byte[] kv = (" " + e.getKey() + "=").getBytes(StandardCharsets.UTF_8);
                    int len = kv.length + e.getValue().length + 1;
                    int total = len + String.valueOf(len).length();
                    if (String.valueOf(total).length() != String.valueOf(len).length()) {
                        total++;
                    }
                    records.writeBytes(String.valueOf(total).getBytes(StandardCharsets.US_ASCII));
                    records.writeBytes(kv);
                    records.writeBytes(e.getValue());
                    records.write('\n');
                }
                header("PaxHeaders/" + name, 'x', 0644, records.size(), "");
                block(records.toByteArray());
            }
            byte[] data = content.getBytes(StandardCharsets.UTF_8);
            header(name, type, mode, type == '0' ? data.length : 0, link);
            if (type == '0') {
                block(data);
            }
            return this;
        }

        TarBuilder file(String name, String content) {
            return entry(name, '0', 0644, content, "", Map.of());
        }

        private void header(String name, char type, int mode, long size, String link) {
            byte[] h = new byte[512];
            put(h, 0, name);
            put(h, 100, String.format("%07o", mode));
            put(h, 108, "0000000");
            put(h, 116, "0000000");
            put(h, 124, String.format("%011o", size));
            put(h, 136, "00000000000");
            h[156] = (byte) type;
            put(h, 157, link);
            put(h, 257, "ustar");
            put(h, 263, "00");
            for (int i = 148; i < 156; i++) {
                h[i] = ' ';
            }
            int sum = 0;
            for (byte b : h) {
                sum += b & 0xff;
            }
            put(h, 148, String.format("%06o", sum));
            h[154] = 0;
            out.writeBytes(h);
        }

        private void block(byte[] data) {
            out.writeBytes(data);
            out.writeBytes(new byte[(512 - data.length % 512) % 512]);
        }

        private static void put(byte[] h, int off, String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            System.arraycopy(b, 0, h, off, b.length);
        }

        InputStream stream() {
            out.writeBytes(new byte[1024]);
            return new ByteArrayInputStream(out.toByteArray());
        }
    }

    private void apply(TarBuilder... layers) throws Exception {
        try (LayerUnpacker u = new LayerUnpacker(root)) {
            int i = 0;
            for (TarBuilder t : layers) {
                u.apply(t.stream(), "test-" + ++i);
            }
            u.finish();
        }
    }

    @Test
    void namesThatEscapeAreRefused() {
        for (String name : List.of("../x", "a/../../x", "/etc/x", "./../x")) {
            assertThatThrownBy(() -> apply(new TarBuilder().file(name, "x")))
                    .as(name)
                    .isInstanceOf(ImageException.class)
                    .hasMessageContaining("'" + name + "'")
                    .hasMessageContaining("refused");
        }
        assertThat(dir.resolve("x")).doesNotExist();
    }

    @Test
    void aSymlinkOutOfTheRootIsNotFollowedByLaterEntriesOrLayers() throws Exception {
        Path outside = Files.createDirectory(dir.resolve("outside"));
        TarBuilder link = new TarBuilder().entry("esc", '2', 0777, "", outside.toString(), Map.of());
        assertThatThrownBy(() -> apply(link, new TarBuilder().file("esc/pwned", "x")))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("escapes the image root through a symlink");
        TarBuilder rel = new TarBuilder()
                .entry("up", '2', 0777, "", "../outside", Map.of())
                .file("up/pwned", "x");
        assertThatThrownBy(() -> apply(rel)).hasMessageContaining("escapes the image root through a symlink");
        // a hard link to a file outside (through the same link) is refused as well
        Files.writeString(outside.resolve("secret"), "secret");
        TarBuilder hard = new TarBuilder()
                .entry("out", '2', 0777, "", "../outside", Map.of())
                .entry("copy", '1', 0644, "", "out/secret", Map.of());
        assertThatThrownBy(() -> apply(hard)).hasMessageContaining("escapes the image root through a symlink");
        // a whiteout through it deletes nothing outside
        TarBuilder wh = new TarBuilder()
                .entry("w", '2', 0777, "", "../outside", Map.of())
                .file("w/.wh.secret", "");
        assertThatThrownBy(() -> apply(wh)).hasMessageContaining("escapes the image root through a symlink");
        try (var s = Files.list(outside)) {
            assertThat(s.map(p -> p.getFileName().toString()).toList()).containsExactly("secret");
        }
        assertThat(root.resolve("copy")).doesNotExist();
    }

    @Test
    void aSymlinkInsideTheRootIsFollowedForParents() throws Exception {
        apply(
                new TarBuilder()
                        .entry("usr/lib/", '5', 0755, "", "", Map.of())
                        .entry("lib", '2', 0777, "", "usr/lib", Map.of()),
                new TarBuilder().file("lib/libfoo.so", "elf"));
        assertThat(root.resolve("usr/lib/libfoo.so")).hasContent("elf");
        assertThat(Files.isSymbolicLink(root.resolve("lib"))).isTrue();
    }

    @Test
    void binaryXattrsSurviveAndOtherNamespacesAreLeftOut() throws Exception {
        // vfs_cap_data revision 2: cap_setuid (bit 7) permitted+effective, bytes above 0x7f included
        byte[] cap = {1, 0, 0, 2, (byte) 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        apply(new TarBuilder()
                .entry(
                        "bin/tool",
                        '0',
                        04755,
                        "binary",
                        "",
                        Map.of(
                                "SCHILY.xattr.security.capability", cap,
                                "SCHILY.xattr.trusted.overlay.opaque", "y".getBytes(StandardCharsets.US_ASCII),
                                "SCHILY.xattr.user.note", "hi".getBytes(StandardCharsets.US_ASCII))));
        Path tool = root.resolve("bin/tool");
        assertThat(HostCommand.check(List.of("getcap", tool.toString()))).contains("cap_setuid=ep");
        assertThat((int) Files.getAttribute(tool, "unix:mode", LinkOption.NOFOLLOW_LINKS) & 07777)
                .isEqualTo(04755);
        String attrs = HostCommand.run(List.of("getfattr", "-d", "-m", "-", tool.toString()), null, null)
                .output();
        if (!attrs.contains("command not found") && !attrs.contains("No such file")) {
            assertThat(attrs).doesNotContain("trusted.overlay");
        }
    }

    @Test
    void whiteoutsInTheSameLayerSpareWhatThatLayerMade() throws Exception {
        apply(
                new TarBuilder().file("d/old", "1").file("d/sub/deep", "2").file("e/x", "3"),
                new TarBuilder()
                        .file("d/new", "4")
                        .file("d/.wh..wh..opq", "")
                        .file("e/.wh.x", "")
                        .file("e/y", "5"));
        try (var s = Files.list(root.resolve("d"))) {
            assertThat(s.map(p -> p.getFileName().toString()).toList()).containsExactly("new");
        }
        try (var s = Files.list(root.resolve("e"))) {
            assertThat(s.map(p -> p.getFileName().toString()).toList()).containsExactly("y");
        }
    }

    @Test
    void aHardLinkToNothingAndAMalformedArchiveAreClearErrors() {
        assertThatThrownBy(() -> apply(new TarBuilder().entry("a", '1', 0644, "", "missing", Map.of())))
                .hasMessageContaining("which no earlier entry or layer made");
        byte[] garbage = new byte[1024];
        java.util.Arrays.fill(garbage, (byte) 'A');
        assertThatThrownBy(() -> {
                    try (LayerUnpacker u = new LayerUnpacker(root)) {
                        u.apply(new ByteArrayInputStream(garbage), "junk");
                    }
                })
                .isInstanceOf(TarReader.TarFormatException.class)
                .hasMessageContaining("checksum");
    }
}
