package dev.airlock.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The image store on a private directory with one real, small image built by mmdebstrap from
 * the host's Debian mirror (about 40 s): build, reuse, lookup, corruption and removal.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ImageStoreTest {
    private static final ImageSpec TINY =
            new ImageSpec("tiny", "bookworm", List.of("bash"), List.of("echo built > /etc/tiny"));
    private static Path root;
    private static ImageStore store;
    private static Image tiny;

    @BeforeAll
    static void buildOnce() throws Exception {
        root = Files.createTempDirectory("airlock-images");
        store = new ImageStore(root, new RootfsBuilder());
        tiny = store.ensure(TINY, Progress.SILENT);
    }

    @AfterAll
    static void cleanUp() {
        HostFiles.deleteTree(root);
    }

    @Test
    @Order(1)
    void builtImageIsContentAddressedAndListed() {
        assertThat(tiny.id()).hasSize(64).isEqualTo(dev.airlock.host.Hashing.sha256(tiny.file()));
        assertThat(tiny.file().getFileName().toString()).isEqualTo(tiny.id() + ".erofs");
        assertThat(store.list()).extracting(Image::name).containsExactly("tiny");
        assertThat(store.find("tiny")).contains(tiny);
        assertThat(store.find(tiny.id().substring(0, 8))).contains(tiny);
        store.verify(tiny);
    }

    @Test
    @Order(2)
    void ensuringTheSameSpecAgainBuildsNothing() throws Exception {
        long mtime = Files.getLastModifiedTime(tiny.file()).toMillis();
        List<String> said = new ArrayList<>();
        Image again = store.ensure(TINY, said::add);
        assertThat(again.id()).isEqualTo(tiny.id());
        assertThat(said).isEmpty();
        assertThat(Files.getLastModifiedTime(tiny.file()).toMillis()).isEqualTo(mtime);
    }

    @Test
    @Order(3)
    void aSecondNameForTheSameRecipeSharesTheBytes() {
        Image alias = store.ensure(
                new ImageSpec("tiny2", "bookworm", List.of("bash"), List.of("echo built > /etc/tiny")),
                Progress.SILENT);
        assertThat(alias.id()).isEqualTo(tiny.id());
        assertThat(store.list()).extracting(Image::name).containsExactly("tiny", "tiny2");
        store.remove("tiny2", id -> false);
        assertThat(tiny.file()).exists();
    }

    @Test
    @Order(4)
    void unknownImagesAreClearErrors() {
        assertThatThrownBy(() -> store.require("no-such-image", Progress.SILENT))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("unknown image 'no-such-image'")
                .hasMessageContaining("base, python, node")
                .hasMessageContaining("tiny");
        assertThatThrownBy(() -> store.remove("no-such-image", id -> false))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("no such image");
        assertThatThrownBy(() -> new ImageSpec("Bad Name!", "bookworm", List.of(), List.of()))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("invalid image name");
        assertThatThrownBy(() -> new ImageSpec("ok", "bookworm", List.of("rm -rf /"), List.of()))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("invalid Debian package name");
    }

    @Test
    @Order(5)
    void anImageInUseIsNotRemoved() {
        assertThatThrownBy(() -> store.remove("tiny", id -> id.equals(tiny.id())))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("used by a sandbox");
        assertThat(tiny.file()).exists();
    }

    @Test
    @Order(6)
    void aCorruptBlobFailsVerificationAndIsRebuiltByEnsure() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(tiny.file().toFile(), "rw")) {
            f.seek(4096);
            f.write(0x5a ^ f.read());
        }
        assertThatThrownBy(() -> store.verify(tiny))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("is corrupt")
                .hasMessageContaining("airlock image build tiny");
        // A truncated blob is not a valid cache entry: ensure() builds it again.
        try (RandomAccessFile f = new RandomAccessFile(tiny.file().toFile(), "rw")) {
            f.setLength(1000);
        }
        assertThat(store.find("tiny")).isEmpty();
        Image rebuilt = store.ensure(TINY, Progress.SILENT);
        store.verify(rebuilt);
        assertThat(rebuilt.sizeBytes()).isGreaterThan(1000);
    }

    @Test
    @Order(7)
    void removeDeletesTheNameAndTheBytes() {
        Image current = store.find("tiny").orElseThrow();
        store.remove("tiny", id -> false);
        assertThat(store.list()).isEmpty();
        assertThat(current.file()).doesNotExist();
    }
}
