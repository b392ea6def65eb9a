package dev.airlock.image.layer;

import java.util.Map;

/**
 * One member of a tar archive as its headers describe it (ustar fields overridden by pax and GNU
 * long-name records). {@code xattrs} holds the raw bytes of each extended attribute, as a file
 * capability ({@code security.capability}) is binary.
 */
public record TarEntry(
        String name,
        Type type,
        int mode,
        long uid,
        long gid,
        long size,
        long mtimeSeconds,
        long mtimeNanos,
        String linkName,
        long devMajor,
        long devMinor,
        Map<String, byte[]> xattrs) {

    public enum Type {
        FILE,
        HARDLINK,
        SYMLINK,
        CHAR_DEVICE,
        BLOCK_DEVICE,
        DIRECTORY,
        FIFO
    }
}
