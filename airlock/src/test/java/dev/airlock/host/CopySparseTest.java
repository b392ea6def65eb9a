package dev.airlock.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link HostFiles#copySparse}: a disk layer copied keeps its data and its holes, also onto
 * another file system, where {@code copy_file_range} refuses (EXDEV across file system types): a
 * workspace template save failed when the cache and the data directories were on different file
 * systems.
 */
class CopySparseTest {
    @TempDir
    Path dir;

    @Test
    void aSparseFileIsCopiedWithItsDataAndHoles() throws IOException {
        copyAndCompare(dir.resolve("copy"));
    }

    @Test
    void aSparseFileIsCopiedOntoAnotherFileSystem() throws IOException {
        Path shm = Files.createTempDirectory(Path.of("/dev/shm"), "airlock-copy-");
        try {
            // /dev/shm is a tmpfs, the temporary directory not: the kernel will not copy between them
            assertThat(Files.getFileStore(shm).type())
                    .isNotEqualTo(Files.getFileStore(dir).type());
            copyAndCompare(shm.resolve("copy"));
        } finally {
            HostFiles.deleteTree(shm);
        }
    }

    private void copyAndCompare(Path to) throws IOException {
        Path from = dir.resolve("layer");
        long size = 8L << 20;
        try (RandomAccessFile f = new RandomAccessFile(from.toFile(), "rw")) {
            f.setLength(size);
            f.write("start".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            f.seek(4L << 20);
            f.write("middle".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        }
        HostFiles.copySparse(from, to);
        assertThat(Files.size(to)).isEqualTo(size);
        assertThat(Files.readAllBytes(to)).isEqualTo(Files.readAllBytes(from));
        assertThat(DiskLayer.allocatedBytes(to)).as("the holes stay holes").isLessThan(1L << 20);
    }
}
