package dev.airlock.archive;

import static dev.airlock.testing.CraftedTar.BLOCK_DEVICE;
import static dev.airlock.testing.CraftedTar.CHAR_DEVICE;
import static dev.airlock.testing.CraftedTar.FIFO;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.HostFiles;
import dev.airlock.testing.CraftedTar;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.SequenceInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The host-side unpacker of {@code airlock cp SANDBOX:/dir DST} against archives crafted byte by
 * byte as a hostile guest would send them. Each refusal case is one the host's own tar, which cp
 * used before, would have carried out.
 */
class TarUnpackerTest {
    private static final TarUnpacker.Limits LIMITS = TarUnpacker.Limits.DEFAULT;

    private Path root;
    private Path dst;
    private Path outside;

    @BeforeEach
    void setUp() throws IOException {
        root = Files.createTempDirectory("unpack");
        dst = root.resolve("dst");
        outside = Files.createDirectories(root.resolve("outside"));
    }

    @AfterEach
    void tearDown() {
        HostFiles.deleteTree(root);
    }

    private TarUnpacker.Unpacked unpack(byte[] archive) throws IOException {
        return unpack(archive, LIMITS);
    }

    private TarUnpacker.Unpacked unpack(byte[] archive, TarUnpacker.Limits limits) throws IOException {
        return TarUnpacker.unpack(new ByteArrayInputStream(archive), dst, "top", limits);
    }

    private static int mode(Path p) throws IOException {
        return (int) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
    }

    private List<Path> outsideFiles() throws IOException {
        try (Stream<Path> s = Files.walk(outside)) {
            return s.filter(p -> !p.equals(outside)).toList();
        }
    }

    @Test
    void anHonestTreeArrivesWhole() throws IOException {
        String longName = "top/" + "d".repeat(120) + "/" + "f".repeat(150);
        byte[] tar = new CraftedTar()
                .dir("top", 0755)
                .dir("top/sub", 0750)
                .file("top/sub/run.sh", 0755, "#!/bin/sh\n")
                .file("top/empty", 0644, "")
                .file("top/a.txt", 0600, "alpha\n")
                .hardLink("top/sub/a-again", "top/a.txt")
                .symlink("top/sub/up", "../a.txt")
                .symlink("top/here", "sub/run.sh")
                .dir("top/" + "d".repeat(120), 0755)
                .file(longName, 0644, "long\n")
                .end()
                .bytes();
        TarUnpacker.Unpacked u = unpack(tar);
        assertThat(u.entries()).isEqualTo(10);
        assertThat(Files.readString(dst.resolve("a.txt"))).isEqualTo("alpha\n");
        assertThat(Files.readString(dst.resolve("sub/up"))).isEqualTo("alpha\n");
        assertThat(Files.readSymbolicLink(dst.resolve("here"))).isEqualTo(Path.of("sub/run.sh"));
        assertThat(Files.isSameFile(dst.resolve("a.txt"), dst.resolve("sub/a-again")))
                .isTrue();
        assertThat(mode(dst.resolve("sub/run.sh")) & 0111).isNotZero();
        assertThat(mode(dst.resolve("a.txt")) & 0777).isEqualTo(0600);
        assertThat(Files.size(dst.resolve("empty"))).isZero();
        assertThat(Files.readString(dst.resolve(longName.substring(4)))).isEqualTo("long\n");
        assertThat(Files.getLastModifiedTime(dst.resolve("a.txt")).toMillis()).isEqualTo(1_700_000_000_000L);
    }

    @Test
    void setuidSetgidStickyAndOwnersAreDropped() throws IOException {
        byte[] tar = new CraftedTar()
                .owner(4321)
                .dir("top", 01777)
                .file("top/suid", 06755, "x")
                .dir("top/sticky", 01777)
                .end()
                .bytes();
        unpack(tar);
        int me = (int) Files.getAttribute(root, "unix:uid");
        for (Path p : List.of(dst.resolve("suid"), dst.resolve("sticky"))) {
            assertThat(mode(p) & 07000).as(p.toString()).isZero();
            assertThat((int) Files.getAttribute(p, "unix:uid")).isEqualTo(me);
            assertThat((int) Files.getAttribute(p, "unix:gid")).isNotEqualTo(4321);
        }
        assertThat(mode(dst.resolve("suid")) & 0111).isNotZero();
    }

    @Test
    void devicesAndFifosAreRefusedAndANewTargetIsRemoved() throws IOException {
        for (char type : new char[] {CHAR_DEVICE, BLOCK_DEVICE, FIFO}) {
            byte[] tar = new CraftedTar()
                    .dir("top", 0755)
                    .file("top/ok", 0644, "fine")
                    .entry("top/node", type, 0666, "", new byte[0])
                    .end()
                    .bytes();
            assertThatThrownBy(() -> unpack(tar))
                    .isInstanceOf(ArchiveRefusedException.class)
                    .hasMessageContaining("'top/node'")
                    .hasMessageContaining("nothing was kept");
            assertThat(dst).doesNotExist();
        }
    }

    @Test
    void dotDotAbsoluteAndForeignNamesAreRefused() throws IOException {
        for (String name : List.of("top/../escaped", "top/sub/../../escaped", "/tmp/escaped", "/top/x", "other/x")) {
            byte[] tar = new CraftedTar()
                    .dir("top", 0755)
                    .file(name, 0644, "x")
                    .end()
                    .bytes();
            assertThatThrownBy(() -> unpack(tar))
                    .as(name)
                    .isInstanceOf(ArchiveRefusedException.class)
                    .hasMessageContaining("'" + name + "'");
        }
        assertThat(root.resolve("escaped")).doesNotExist();
        assertThat(outsideFiles()).isEmpty();
    }

    @Test
    void symlinksThatLeaveTheCopyAreRefused() throws IOException {
        for (String target : List.of(outside.toString(), "..", "../outside", "sub/../../outside", "a/b/../../..")) {
            byte[] tar = new CraftedTar()
                    .dir("top", 0755)
                    .dir("top/sub", 0755)
                    .symlink("top/l", target)
                    .end()
                    .bytes();
            assertThatThrownBy(() -> unpack(tar))
                    .as(target)
                    .isInstanceOf(ArchiveRefusedException.class)
                    .hasMessageContaining("'top/l'");
        }
        // One level down, one '..' still stays inside.
        unpack(new CraftedTar()
                .dir("top/sub", 0755)
                .symlink("top/sub/l", "../x")
                .end()
                .bytes());
        assertThat(Files.readSymbolicLink(dst.resolve("sub/l"))).isEqualTo(Path.of("../x"));
    }

    @Test
    void noEntryIsWrittenThroughASymlinkOfTheSameArchive() throws IOException {
        byte[] tar = new CraftedTar()
                .dir("top", 0755)
                .dir("top/sub", 0755)
                .symlink("top/l", "sub")
                .file("top/l/x", 0644, "through the link")
                .end()
                .bytes();
        assertThatThrownBy(() -> unpack(tar))
                .isInstanceOf(ArchiveRefusedException.class)
                .hasMessageContaining("'top/l/x'")
                .hasMessageContaining("symlink");
        assertThat(dst).doesNotExist();
    }

    @Test
    void aSymlinkLeftInTheDestinationIsNeverFollowedByALaterCopy() throws IOException {
        // First copy: the escaping link itself is refused, so no copy leaves one behind ...
        byte[] first = new CraftedTar()
                .dir("top", 0755)
                .symlink("top/l", outside.toString())
                .end()
                .bytes();
        assertThatThrownBy(() -> unpack(first)).isInstanceOf(ArchiveRefusedException.class);
        // ... and one already there (made by an older version, or by the user) is not followed.
        Files.createDirectories(dst);
        Files.createSymbolicLink(dst.resolve("l"), outside);
        Files.writeString(outside.resolve("victim"), "original");
        Files.createSymbolicLink(dst.resolve("f"), outside.resolve("victim"));
        byte[] second = new CraftedTar()
                .dir("top", 0755)
                .file("top/f", 0644, "replaced the link, not the victim")
                .file("top/l/x", 0644, "through the link")
                .end()
                .bytes();
        assertThatThrownBy(() -> unpack(second))
                .isInstanceOf(ArchiveRefusedException.class)
                .hasMessageContaining("'top/l/x'")
                .hasMessageContaining("what came before it is in");
        assertThat(outside.resolve("x")).doesNotExist();
        assertThat(Files.readString(outside.resolve("victim"))).isEqualTo("original");
        assertThat(Files.isSymbolicLink(dst.resolve("f"))).isFalse();
        assertThat(Files.readString(dst.resolve("f"))).isEqualTo("replaced the link, not the victim");
    }

    @Test
    void aTargetThatIsASymlinkIsRefused() throws IOException {
        Files.createSymbolicLink(dst, outside);
        byte[] tar =
                new CraftedTar().dir("top", 0755).file("top/x", 0644, "x").end().bytes();
        assertThatThrownBy(() -> unpack(tar)).hasMessageContaining("is a symlink or not a directory");
        assertThat(outsideFiles()).isEmpty();
    }

    @Test
    void hardLinksOnlyToFilesThisCopyWrote() throws IOException {
        Files.writeString(outside.resolve("secret"), "secret");
        Files.createDirectories(dst);
        Files.writeString(dst.resolve("existing"), "was here before");
        for (String target : List.of(outside.resolve("secret").toString(), "top/../outside/secret", "top/existing")) {
            byte[] tar = new CraftedTar()
                    .dir("top", 0755)
                    .hardLink("top/h", target)
                    .end()
                    .bytes();
            assertThatThrownBy(() -> unpack(tar))
                    .as(target)
                    .isInstanceOf(ArchiveRefusedException.class)
                    .hasMessageContaining("'top/h'");
        }
        assertThat(dst.resolve("h")).doesNotExist();
        assertThat((int) Files.getAttribute(outside.resolve("secret"), "unix:nlink"))
                .isEqualTo(1);
    }

    @Test
    void sizesPastTheLimitAreRefusedBeforeAnyDataIsRead() throws IOException {
        // A pax size of 2^62 bytes, and (with a 1 MiB limit) an 8 GiB octal size; neither has data.
        byte[] pax = new CraftedTar()
                .dir("top", 0755)
                .pax(Map.of("size", Long.toString(1L << 62)))
                .headerOnly("top/huge", CraftedTar.FILE, 0644, 0)
                .bytes();
        assertThatThrownBy(() -> unpack(pax))
                .isInstanceOf(ArchiveRefusedException.class)
                .hasMessageContaining("'top/huge'")
                .hasMessageContaining("limit");
        byte[] octal = new CraftedTar()
                .dir("top", 0755)
                .headerOnly("top/big", CraftedTar.FILE, 0644, (8L << 30) - 1)
                .bytes();
        assertThatThrownBy(() -> unpack(octal, new TarUnpacker.Limits(100, 1 << 20, 4096, 1 << 20)))
                .isInstanceOf(ArchiveRefusedException.class)
                .hasMessageContaining("'top/big'");
        assertThat(dst).doesNotExist();
    }

    @Test
    void oversizedHeadersAreRefusedBeforeTheyAreBuffered() throws IOException {
        // 64 MiB of pax comment, streamed: the unpacker must stop after its 1 MiB header budget.
        byte[] head = new CraftedTar().dir("top", 0755).bytes();
        String record = (64 << 20) + " comment=";
        byte[] paxHeader =
                new CraftedTar().headerOnly("PaxHeaders/x", 'x', 0644, 64 << 20).bytes();
        InputStream endless = new SequenceInputStream(
                new ByteArrayInputStream(concat(head, paxHeader, record.getBytes(StandardCharsets.US_ASCII))),
                new InputStream() {
                    @Override
                    public int read() {
                        return 'a';
                    }
                });
        assertThatThrownBy(() -> TarUnpacker.unpack(endless, dst, "top", LIMITS))
                .isInstanceOf(ArchiveRefusedException.class)
                .hasMessageContaining("headers");
    }

    @Test
    void aTruncatedArchiveIsRefused() throws IOException {
        CraftedTar tar = new CraftedTar().dir("top", 0755).file("top/data", 0644, "x".repeat(5000));
        assertThatThrownBy(() -> unpack(tar.truncated(512 + 512 + 1000)))
                .isInstanceOf(ArchiveRefusedException.class)
                .hasMessageContaining("'top/data'");
        assertThat(dst).doesNotExist();
    }

    @Test
    void entryCountAndNameLengthAreCapped() throws IOException {
        CraftedTar many = new CraftedTar().dir("top", 0755);
        for (int i = 0; i < 5; i++) {
            many.file("top/f" + i, 0644, "");
        }
        assertThatThrownBy(() -> unpack(many.end().bytes(), new TarUnpacker.Limits(3, 1 << 20, 4096, 1 << 20)))
                .hasMessageContaining("more than 3 entries");
        byte[] longComponent = new CraftedTar()
                .dir("top", 0755)
                .file("top/" + "n".repeat(300), 0644, "")
                .end()
                .bytes();
        assertThatThrownBy(() -> unpack(longComponent)).hasMessageContaining("longer than 255 bytes");
        byte[] longPath = new CraftedTar()
                .dir("top", 0755)
                .file("top/" + "a/".repeat(2100) + "x", 0644, "")
                .end()
                .bytes();
        assertThatThrownBy(() -> unpack(longPath)).hasMessageContaining("longer than 4096 bytes");
    }

    @Test
    void copyingIntoAnExistingTreeReplacesFilesWithoutTouchingTheirOtherLinks() throws IOException {
        Files.createDirectories(dst);
        Files.writeString(outside.resolve("shared"), "user's file");
        Files.createLink(dst.resolve("f"), outside.resolve("shared"));
        Files.writeString(dst.resolve("kept"), "kept");
        unpack(new CraftedTar()
                .dir("top", 0755)
                .file("top/f", 0644, "new")
                .end()
                .bytes());
        assertThat(Files.readString(dst.resolve("f"))).isEqualTo("new");
        assertThat(Files.readString(outside.resolve("shared"))).isEqualTo("user's file");
        assertThat(Files.readString(dst.resolve("kept"))).isEqualTo("kept");
        // A directory in the way of a file is refused, not removed.
        Files.createDirectories(dst.resolve("d"));
        assertThatThrownBy(() -> unpack(new CraftedTar()
                        .dir("top", 0755)
                        .file("top/d", 0644, "x")
                        .end()
                        .bytes()))
                .hasMessageContaining("a directory of that name is already there");
        assertThat(dst.resolve("d")).isDirectory();
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] all = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }
}
