package dev.airlock.image;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Writes the tiny initramfs that holds only the guest agent as {@code /init}: a "newc" cpio
 * archive (the format the kernel unpacks). Writing it here keeps cpio off the build's
 * dependencies and makes the archive byte-for-byte reproducible (fixed mtime, inode numbers).
 */
public final class Initramfs {
    private Initramfs() {}

    public static byte[] withInit(byte[] initBinary) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(initBinary.length + 512);
        entry(out, 1, "init", 0100755, initBinary);
        entry(out, 2, "TRAILER!!!", 0, new byte[0]);
        // The kernel accepts any length, but pad to 512 like cpio(1) does.
        while (out.size() % 512 != 0) {
            out.write(0);
        }
        return out.toByteArray();
    }

    private static void entry(ByteArrayOutputStream out, int ino, String name, int mode, byte[] data) {
        byte[] nameBytes = name.getBytes(StandardCharsets.US_ASCII);
        String header = "070701" + hex(ino) + hex(mode) + hex(0) + hex(0) + hex(1) + hex(0) + hex(data.length) + hex(0)
                + hex(0) + hex(0) + hex(0) + hex(nameBytes.length + 1) + hex(0);
        out.writeBytes(header.getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(nameBytes);
        out.write(0);
        pad4(out);
        out.writeBytes(data);
        pad4(out);
    }

    private static String hex(int v) {
        return String.format("%08X", v);
    }

    private static void pad4(ByteArrayOutputStream out) {
        while (out.size() % 4 != 0) {
            out.write(0);
        }
    }
}
