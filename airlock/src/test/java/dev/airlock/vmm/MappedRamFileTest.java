package dev.airlock.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The RAM offset of a mapped-ram file, read from bytes laid out as QEMU 10 writes them (the head
 * below is a real save's, up to the mapped-ram header); a damaged or hostile head is refused.
 */
class MappedRamFileTest {
    private static final long RAM = 512L << 20;

    @TempDir
    Path dir;

    /** A file as QEMU writes it: stream head, the ram0 record, its mapped-ram header, a sparse RAM image. */
    private Path saved(int version, long pageSize, long pagesOffset, long fileSize) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        b.put(new byte[] {'Q', 'E', 'V', 'M', 0, 0, 0, 3, 7, 0, 0, 0, 7});
        b.put("microvm".getBytes(StandardCharsets.ISO_8859_1));
        b.put(new byte[] {5, 26}).put("configuration/capabilities".getBytes(StandardCharsets.ISO_8859_1));
        b.put(new byte[] {0, 0, 0, 1, 0, 0, 0, 1, 10}).put("mapped-ram".getBytes(StandardCharsets.ISO_8859_1));
        b.put(new byte[] {1, 0, 0, 0, 1, 3}).put("ram".getBytes(StandardCharsets.ISO_8859_1));
        b.putInt(0).putInt(4).putLong((RAM + (64 << 10)) | 4);
        b.put((byte) 4).put("ram0".getBytes(StandardCharsets.ISO_8859_1)).putLong(RAM);
        b.putInt(version).putLong(pageSize).putLong(b.position() + 28).putLong(pagesOffset);
        Path f = dir.resolve("saved-" + pagesOffset + "-" + fileSize);
        Files.write(f, java.util.Arrays.copyOf(b.array(), b.position()));
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(fileSize); // sparse, as QEMU leaves zero pages
        }
        return f;
    }

    @Test
    void findsTheGuestRamImage() throws IOException {
        assertThat(MappedRamFile.pagesOffset(saved(1, 4096, 1 << 20, (1 << 20) + RAM + 8192), RAM))
                .isEqualTo(1 << 20);
    }

    @Test
    void refusesWhatItCannotTrust() throws IOException {
        // pages beyond the end of the file, unaligned, another version or page size
        assertThatThrownBy(() -> MappedRamFile.pagesOffset(saved(1, 4096, 1 << 20, RAM), RAM))
                .isInstanceOf(VmmException.class)
                .hasMessageContaining("mapped-ram header");
        assertThatThrownBy(() -> MappedRamFile.pagesOffset(saved(1, 4096, (1 << 20) + 4096, 2 * RAM), RAM))
                .isInstanceOf(VmmException.class);
        assertThatThrownBy(() -> MappedRamFile.pagesOffset(saved(2, 4096, 1 << 20, 2 * RAM), RAM))
                .isInstanceOf(VmmException.class);
        assertThatThrownBy(() -> MappedRamFile.pagesOffset(saved(1, 65536, 1 << 20, 2 * RAM), RAM))
                .isInstanceOf(VmmException.class);
        // another RAM size: no record of this guest's RAM
        assertThatThrownBy(() -> MappedRamFile.pagesOffset(saved(1, 4096, 1 << 20, 2 * RAM), RAM / 2))
                .isInstanceOf(VmmException.class)
                .hasMessageContaining("no mapped-ram record");
        Path notQemu = dir.resolve("text");
        Files.writeString(notQemu, "hello");
        assertThatThrownBy(() -> MappedRamFile.pagesOffset(notQemu, RAM))
                .isInstanceOf(VmmException.class)
                .hasMessageContaining("not a QEMU migration stream");
    }
}
