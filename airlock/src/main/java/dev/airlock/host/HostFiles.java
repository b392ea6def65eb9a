package dev.airlock.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;

/** The file operations Airlock's stores share, each done one way. */
public final class HostFiles {
    private HostFiles() {}

    /**
     * Replaces {@code target} with {@code bytes} so that a crash at any point leaves either the
     * old or the new content: write a temporary sibling, fsync it, rename it over the target.
     * The file is the owner's alone (0600) from its creation on, so it suits secrets and keys:
     * there is no moment at which the content exists with wider permissions, or not at all.
     */
    public static void writeAtomically(Path target, byte[] bytes) {
        writeAtomically(target, bytes, "rw-------");
    }

    /**
     * As {@link #writeAtomically(Path, byte[])}, the file getting {@code permissions} (e.g.
     * {@code rwxr-xr-x} for a program) just before the rename: written at 0600, it is never
     * visible half-written or with its final mode before it is whole.
     */
    public static void writeAtomically(Path target, byte[] bytes, String permissions) {
        renameInto(target, bytes, permissions, true);
    }

    /**
     * Replaces {@code target} with {@code bytes} by a rename, so a reader sees the old content or
     * the new, but without the fsync: for a note whose loss in a host crash costs nothing (the
     * origin a sandbox came up from), where an fsync costs a start 1-12 ms on this host's disk.
     * Owner-only (0600).
     */
    public static void replace(Path target, byte[] bytes) {
        renameInto(target, bytes, "rw-------", false);
    }

    /** Writes a temporary file at 0600 beside {@code target} (fsynced when durable) and renames it over. */
    private static void renameInto(Path target, byte[] bytes, String permissions, boolean durable) {
        try {
            Path tmp = Files.createTempFile(
                    target.getParent(),
                    target.getFileName().toString(),
                    ".tmp",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.write(tmp, bytes);
            if (durable) {
                try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
            }
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString(permissions));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target, e);
        }
    }

    /**
     * Makes the entries of {@code dir} durable (fsync of the directory itself): a file renamed
     * or created in it, even fsynced, may otherwise be missing after a host crash.
     */
    public static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot sync directory " + dir, e);
        }
    }

    /**
     * Makes {@code root} durable, a file or a whole tree: every file and directory in it fsynced,
     * and its entry in its parent directory. For what another program wrote (a VMM's saved state,
     * a checkpoint) that is about to become the only copy of something.
     */
    public static void syncTree(Path root) {
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.toList()) {
                if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                    syncDirectory(p);
                } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                        ch.force(true);
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot sync " + root, e);
        }
        Path parent = root.toAbsolutePath().getParent();
        if (parent != null) {
            syncDirectory(parent);
        }
    }

    /**
     * Writes out everything of the filesystem that holds {@code path} ({@code syncfs}): for a
     * sandbox disk mounted on the host, whose file is then written out too (the loop device
     * passes the flush on to it).
     */
    public static void syncFilesystem(Path path) {
        HostCommand.Result r = HostCommand.run(java.util.List.of("sync", "-f", path.toString()), null, null);
        if (!r.ok()) {
            throw new UncheckedIOException(new IOException(
                    "cannot sync the filesystem of " + path + ": " + r.output().strip()));
        }
    }

    /**
     * An empty file only its owner can read or write (0600), for a file another program fills
     * (QEMU's console log, a saved VM state, a RAM file): such programs keep the mode of a file
     * that exists instead of making it with their own (usually 0644). An existing file is kept
     * and closed to 0600.
     */
    public static Path ownerOnlyFile(Path file) {
        try {
            try {
                Files.createFile(
                        file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            } catch (java.nio.file.FileAlreadyExistsException e) {
                Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            }
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + file, e);
        }
    }

    /**
     * Copies a sparse file (a disk layer) block-for-block where it holds data and leaves its holes
     * holes, in the kernel ({@code copy_file_range}, which shares the blocks on filesystems that
     * can reflink). In process: a forked {@code cp} costs more than copying a fresh layer's few MB.
     */
    public static void copySparse(Path from, Path to) throws IOException {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int in = sys.open(from.toString(), LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_CLOEXEC);
            try {
                int out = sys.open(
                        to.toString(),
                        LinuxSyscalls.O_WRONLY
                                | LinuxSyscalls.O_CREAT
                                | LinuxSyscalls.O_TRUNC
                                | LinuxSyscalls.O_CLOEXEC,
                        0600);
                try {
                    long size = Files.size(from);
                    sys.ftruncate(out, size);
                    long offset = 0;
                    boolean inKernel = true;
                    while (offset < size) {
                        long data = sys.lseek(in, offset, LinuxSyscalls.SEEK_DATA);
                        if (data < 0) {
                            break;
                        }
                        long hole = sys.lseek(in, data, LinuxSyscalls.SEEK_HOLE);
                        if (inKernel) {
                            try {
                                sys.copyFileRange(in, out, data, hole - data);
                                offset = hole;
                                continue;
                            } catch (LinuxSyscalls.ErrnoException e) {
                                // another file system type (the cache and the data directory apart):
                                // the kernel copies nothing then, so this range is copied here whole
                                if (e.errno() != LinuxSyscalls.EXDEV) {
                                    throw e;
                                }
                                inKernel = false;
                            }
                        }
                        copyRange(from, to, data, hole - data);
                        offset = hole;
                    }
                } finally {
                    sys.close(out);
                }
            } finally {
                sys.close(in);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new IOException("cannot copy " + from + " to " + to + ": " + e.getMessage(), e);
        }
    }

    /** One range of {@code from} into the same place in {@code to}, through this process. */
    private static void copyRange(Path from, Path to, long offset, long length) throws IOException {
        try (FileChannel in = FileChannel.open(from, StandardOpenOption.READ);
                FileChannel out = FileChannel.open(to, StandardOpenOption.WRITE)) {
            out.position(offset);
            long done = 0;
            while (done < length) {
                long n = in.transferTo(offset + done, length - done, out);
                if (n <= 0) {
                    throw new IOException(from + " is shorter than expected at " + (offset + done));
                }
                done += n;
            }
        }
    }

    /**
     * The last {@code maxBytes} of a file (all of it when shorter), or an empty array when it
     * does not exist: logs a guest writes can be any size, and only their end is ever shown.
     */
    public static byte[] tail(Path file, int maxBytes) throws IOException {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            long size = ch.size();
            long from = Math.max(0, size - maxBytes);
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate((int) Math.min(maxBytes, size));
            while (buf.hasRemaining()) {
                if (ch.read(buf, from + buf.position()) < 0) {
                    break;
                }
            }
            return java.util.Arrays.copyOf(buf.array(), buf.position());
        } catch (java.nio.file.NoSuchFileException e) {
            return new byte[0];
        }
    }

    /** The entries of a directory; none when it does not exist. */
    public static java.util.List<Path> children(Path dir) {
        if (!Files.isDirectory(dir)) {
            return java.util.List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        } catch (java.nio.file.NoSuchFileException e) {
            return java.util.List.of();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    /**
     * Deletes a directory tree; a missing tree is already deleted. A file another thread or
     * process writes into the tree while it goes (a record saved by a watcher, a log line) makes
     * a directory non-empty after the walk listed it: the walk is made again, a few times.
     */
    public static void deleteTree(Path root) {
        for (int attempt = 1; ; attempt++) {
            if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
                return;
            }
            try (Stream<Path> walk = Files.walk(root)) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
                return;
            } catch (java.nio.file.DirectoryNotEmptyException | java.nio.file.NoSuchFileException e) {
                if (attempt >= 5) {
                    throw new UncheckedIOException("cannot delete " + root + " (" + e + ")", e);
                }
            } catch (UncheckedIOException e) {
                // Files.walk reports an entry gone while it walked this way.
                if (!(e.getCause() instanceof java.nio.file.NoSuchFileException) || attempt >= 5) {
                    throw new UncheckedIOException("cannot delete " + root + " (" + e.getCause() + ")", e.getCause());
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot delete " + root + " (" + e + ")", e);
            }
        }
    }

    /**
     * Takes the lock named by {@code lockFile}, across processes (a file lock) and across threads
     * of this one (file locks are per process: a second thread would get an exception, not a wait).
     */
    public static Lock lock(Path lockFile) {
        ReentrantLock local = LOCAL.computeIfAbsent(lockFile.toAbsolutePath().normalize(), k -> new ReentrantLock());
        local.lock();
        try {
            Files.createDirectories(lockFile.getParent());
            FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                ch.lock();
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
            return new Lock(local, ch);
        } catch (IOException e) {
            local.unlock();
            throw new UncheckedIOException("cannot lock " + lockFile, e);
        } catch (RuntimeException e) {
            local.unlock();
            throw e;
        }
    }

    /**
     * {@link #lock} without waiting: empty when another thread or process holds the lock. A file
     * lock dies with its process, so a lock that can be taken says that nobody alive holds it.
     */
    public static java.util.Optional<Lock> tryLock(Path lockFile) {
        ReentrantLock local = LOCAL.computeIfAbsent(lockFile.toAbsolutePath().normalize(), k -> new ReentrantLock());
        if (local.isHeldByCurrentThread() || !local.tryLock()) {
            return java.util.Optional.empty();
        }
        try {
            Files.createDirectories(lockFile.getParent());
            FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                if (ch.tryLock() == null) {
                    ch.close();
                    local.unlock();
                    return java.util.Optional.empty();
                }
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
            return java.util.Optional.of(new Lock(local, ch));
        } catch (IOException e) {
            local.unlock();
            throw new UncheckedIOException("cannot lock " + lockFile, e);
        } catch (RuntimeException e) {
            local.unlock();
            throw e;
        }
    }

    private static final ConcurrentHashMap<Path, ReentrantLock> LOCAL = new ConcurrentHashMap<>();

    /** A held lock; closing it releases the file lock and then the thread lock. */
    public static final class Lock implements AutoCloseable {
        private final ReentrantLock local;
        private final FileChannel channel;

        private Lock(ReentrantLock local, FileChannel channel) {
            this.local = local;
            this.channel = channel;
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException e) {
                // Closing releases the lock even when it reports an error.
            } finally {
                local.unlock();
            }
        }
    }
}
