package dev.airlock.vmm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Where the guest's RAM lies in a file QEMU saved with the {@code mapped-ram} capability: every
 * RAM block's pages at fixed, 1 MiB-aligned offsets (zero pages left as holes), so the file's
 * region for the guest's memory backend ({@code ram0}) is a sparse image of guest RAM that other
 * VMs can map copy-on-write instead of reading it.
 *
 * <p>The block's record in the stream is its name's length and name, its used length (8 bytes),
 * then the mapped-ram header: version (4), page size (8), bitmap offset (8), pages offset (8), all
 * big-endian (QEMU's {@code migration/ram.c}, {@code MappedRamHeader}). QEMU is jailed and the
 * guest may own it, so the file is untrusted: only its first 64 KiB are read, and the offsets
 * must be aligned and inside the file.
 */
public final class MappedRamFile {
    private static final int HEAD = 64 << 10;
    private static final long ALIGNMENT = 1 << 20;
    private static final byte[] BLOCK = "\u0004ram0".getBytes(StandardCharsets.ISO_8859_1);

    private MappedRamFile() {}

    /** The offset of the guest RAM's first page in {@code file}, whose RAM is {@code ramBytes} long. */
    public static long pagesOffset(Path file, long ramBytes) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer head = ByteBuffer.allocate((int) Math.min(HEAD, ch.size()));
            while (head.hasRemaining() && ch.read(head) >= 0) {
                // read the head whole
            }
            head.flip();
            if (head.remaining() < 4 || head.getInt(0) != 0x5145564d) { // "QEVM"
                throw new VmmException(file + " is not a QEMU migration stream");
            }
            for (int i = 4; i + BLOCK.length + 8 + 28 <= head.limit(); i++) {
                if (!matches(head, i) || head.getLong(i + BLOCK.length) != ramBytes) {
                    continue;
                }
                int h = i + BLOCK.length + 8;
                int version = head.getInt(h);
                long pageSize = head.getLong(h + 4);
                long pagesOffset = head.getLong(h + 20);
                if (version != 1
                        || pageSize != 4096
                        || pagesOffset <= 0
                        || pagesOffset % ALIGNMENT != 0
                        || pagesOffset > ch.size() - ramBytes) {
                    throw new VmmException(file + " has a mapped-ram header this Airlock does not read (version "
                            + version + ", page size " + pageSize + ", pages at " + pagesOffset + ")");
                }
                return pagesOffset;
            }
            throw new VmmException(file + " holds no mapped-ram record of the guest's RAM (ram0, " + ramBytes
                    + " bytes) in its first " + (HEAD >> 10) + " KiB");
        } catch (IOException e) {
            throw new VmmException("cannot read the saved VM " + file + ": " + e.getMessage(), e);
        }
    }

    private static boolean matches(ByteBuffer head, int at) {
        for (int j = 0; j < BLOCK.length; j++) {
            if (head.get(at + j) != BLOCK[j]) {
                return false;
            }
        }
        return true;
    }
}
