package dev.airlock.engine;

import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessStamp;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Says, in a sandbox's directory, that a process is in the middle of a multi-step operation on
 * it (a pause, a resume, a fork) whose steps a crash could separate: a VM stopped for saving but
 * neither ended nor continued, a clone recorded but never started. The marker is written and
 * removed under a file lock its process holds for the whole operation; a file lock ends with its
 * process, so a marker whose lock can be taken was left by a process that died, and is mended
 * by whoever looks next (see {@link SandboxEngine}); one whose lock is held is left alone.
 */
final class OperationMarker implements AutoCloseable {
    static final String FILE = ".operation";
    private static final String LOCK = ".operation.lock";

    /** What a marker may say. */
    enum Operation {
        PAUSE,
        RESUME,
        /** The source of a fork: stopped while its state is saved. */
        FORK,
        /** A clone being made: recorded, not yet started. */
        CLONE
    }

    private final Path file;
    private final HostFiles.Lock lock;

    private OperationMarker(Path file, HostFiles.Lock lock) {
        this.file = file;
        this.lock = lock;
    }

    /** Marks {@code dir} as being worked on by this process; closing the marker removes it. */
    static OperationMarker begin(Path dir, Operation op) {
        HostFiles.Lock lock = HostFiles.lock(dir.resolve(LOCK));
        try {
            Path file = dir.resolve(FILE);
            // The process is named for whoever reads the file; the lock is what decides.
            HostFiles.writeAtomically(
                    file, (op.name() + " " + ProcessStamp.current().text() + "\n").getBytes(StandardCharsets.UTF_8));
            return new OperationMarker(file, lock);
        } catch (RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    /** Whether {@code dir} has a marker at all: one cheap check before anything else. */
    static boolean present(Path dir) {
        return Files.exists(dir.resolve(FILE));
    }

    /**
     * The operation a dead process left unfinished in {@code dir}, with the lock held for mending
     * it: empty when there is none or its process still works on it. Close the result when done.
     */
    static Optional<Left> leftByTheDead(Path dir) {
        Optional<HostFiles.Lock> lock = HostFiles.tryLock(dir.resolve(LOCK));
        if (lock.isEmpty()) {
            return Optional.empty();
        }
        try {
            String text =
                    Files.readString(dir.resolve(FILE), StandardCharsets.UTF_8).strip();
            Operation op = Operation.valueOf(text.split(" ", 2)[0]);
            return Optional.of(new Left(op, dir, lock.get()));
        } catch (IOException | IllegalArgumentException e) {
            // Gone meanwhile, or not ours to read: nothing to mend.
            lock.get().close();
            return Optional.empty();
        }
    }

    /** An unfinished operation found, its lock held: {@link #close} removes the marker and lets go. */
    record Left(Operation op, Path dir, HostFiles.Lock lock) implements AutoCloseable {
        @Override
        public void close() {
            try {
                HostFiles.deleteTree(dir.resolve(FILE));
            } finally {
                lock.close();
            }
        }
    }

    @Override
    public void close() {
        try {
            HostFiles.deleteTree(file);
        } finally {
            lock.close();
        }
    }
}
