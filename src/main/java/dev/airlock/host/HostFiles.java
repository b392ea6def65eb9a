package dev.airlock.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.stream.Stream;

/** The two file operations every store in Airlock needs, done one way. */
public final class HostFiles {
    private HostFiles() {}

    /**
     * Replaces {@code target} with {@code bytes} so that a crash at any point leaves either the
     * old or the new content: write a temporary sibling, fsync it, rename it over the target.
     */
    public static void writeAtomically(Path target, byte[] bytes) {
        try {
            Path tmp = Files.createTempFile(
                    target.getParent(), target.getFileName().toString(), ".tmp");
            Files.write(tmp, bytes);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target, e);
        }
    }

    /** Deletes a directory tree; a missing tree is already deleted. */
    public static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + root, e);
        }
    }

    /** Opens and locks {@code lockFile} (creating it); closing the channel releases the lock. */
    public static FileChannel lock(Path lockFile) {
        try {
            Files.createDirectories(lockFile.getParent());
            FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            ch.lock();
            return ch;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot lock " + lockFile, e);
        }
    }
}
