package dev.airlock.image.layer;

import dev.airlock.host.LinuxSyscalls;
import dev.airlock.host.LinuxSyscalls.ErrnoException;
import dev.airlock.image.ImageException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * Applies OCI image layers (tar streams) to a directory on the host, one after the other, as the
 * OCI image spec's "Applying Changesets" describes: whiteouts ({@code .wh.NAME}) delete what
 * lower layers made, an opaque marker ({@code .wh..wh..opq}) empties its directory of them; hard
 * links, symlinks, devices, owners, full modes (setuid included) and extended attributes (file
 * capabilities included) are reproduced.
 *
 * <p>A layer is untrusted. Names with {@code ..} components or a leading {@code /} are refused,
 * and every entry's parent directory is opened by the kernel with {@code openat2(RESOLVE_BENEATH)}
 * from a descriptor of the root, so a symlink (made by this or a lower layer) that leads outside
 * the root is refused too, with no window between a check and a use. Everything below the parent
 * is done with the {@code *at} calls on that descriptor and never follows the final name.
 *
 * <p>Confined to one thread (it owns native buffers); close it when done.
 */
public final class LayerUnpacker implements AutoCloseable {
    private static final int BUFFER = 1 << 20;
    private static final long BENEATH = LinuxSyscalls.RESOLVE_BENEATH | LinuxSyscalls.RESOLVE_NO_MAGICLINKS;
    private static final String WHITEOUT = ".wh.";
    private static final String OPAQUE = ".wh..wh..opq";
    private static final int S_IFCHR = 0020000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFIFO = 0010000;

    private final LinuxSyscalls sys = new LinuxSyscalls();
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment native_ = arena.allocate(BUFFER);
    private final byte[] heap = new byte[BUFFER];
    private final int rootFd;
    private final Map<String, long[]> dirTimes = new HashMap<>();
    private @Nullable String cachedParent;
    private int cachedParentFd = -1;
    private int droppedXattrs;

    /** What one layer did, for progress lines. */
    public record Stats(long entries, long bytes, int droppedXattrs) {}

    public LayerUnpacker(Path root) {
        try {
            rootFd = sys.openat(
                    LinuxSyscalls.AT_FDCWD,
                    root.toString(),
                    LinuxSyscalls.O_PATH | LinuxSyscalls.O_DIRECTORY | LinuxSyscalls.O_CLOEXEC,
                    0);
        } catch (ErrnoException e) {
            sys.close();
            arena.close();
            throw new UncheckedIOException(new IOException("cannot open " + root + ": " + e.getMessage()));
        }
    }

    /**
     * Applies one layer. {@code label} names it in errors. On an error the tree is half-applied:
     * the caller discards it.
     */
    public Stats apply(InputStream tar, String label) throws IOException {
        TarReader reader = new TarReader(tar);
        Set<String> created = new HashSet<>();
        long entries = 0;
        long bytes = 0;
        int droppedBefore = droppedXattrs;
        for (TarEntry e; (e = reader.next()) != null; ) {
            entries++;
            bytes += e.size();
            try {
                entry(e, reader, created);
            } catch (ErrnoException x) {
                throw new ImageException(
                        "layer " + label + ": cannot apply entry '" + e.name() + "': " + x.getMessage());
            } catch (EscapeException x) {
                throw new ImageException("layer " + label + ": entry '" + e.name() + "' " + x.getMessage()
                        + "; the layer is refused (a layer may only write inside the image)");
            }
        }
        return new Stats(entries, bytes, droppedXattrs - droppedBefore);
    }

    /** Sets directory times last: every entry added below a directory changed its time. */
    public void finish() {
        for (Map.Entry<String, long[]> t : dirTimes.entrySet()) {
            try {
                String path = t.getKey();
                if (path.isEmpty()) {
                    sys.utimensat(rootFd, ".", t.getValue()[0], t.getValue()[1], 0);
                    continue;
                }
                int slash = path.lastIndexOf('/');
                int pfd = parentFd(slash < 0 ? "" : path.substring(0, slash), false);
                if (pfd >= 0) {
                    sys.utimensat(
                            pfd,
                            path.substring(slash + 1),
                            t.getValue()[0],
                            t.getValue()[1],
                            LinuxSyscalls.AT_SYMLINK_NOFOLLOW);
                }
            } catch (ErrnoException | EscapeException e) {
                // A directory a later layer replaced by something else: its time is the file's own.
            }
        }
        dirTimes.clear();
    }

    private void entry(TarEntry e, TarReader reader, Set<String> created)
            throws IOException, ErrnoException, EscapeException {
        String path = clean(e.name());
        if (path.isEmpty()) {
            if (e.type() == TarEntry.Type.DIRECTORY) {
                metadata(rootFd, ".", e, false);
                dirTimes.put("", new long[] {e.mtimeSeconds(), e.mtimeNanos()});
            }
            return;
        }
        int slash = path.lastIndexOf('/');
        String parent = slash < 0 ? "" : path.substring(0, slash);
        String base = path.substring(slash + 1);
        if (base.startsWith(WHITEOUT)) {
            int pfd = parentFd(parent, false);
            if (pfd < 0) {
                return; // nothing below a directory that does not exist to delete
            }
            if (base.equals(OPAQUE)) {
                opaque(pfd, parent, created);
            } else if (!base.startsWith(WHITEOUT + WHITEOUT)) { // .wh..wh.* are aufs bookkeeping
                String target = base.substring(WHITEOUT.length());
                if (!target.isEmpty()
                        && !target.equals(".")
                        && !target.equals("..")
                        && !created.contains(join(parent, target))) {
                    removeTree(pfd, target, join(parent, target));
                }
            }
            return;
        }
        int pfd = parentFd(parent, true);
        int existing = sys.lstatMode(pfd, base);
        boolean keepDir = existing != -1
                && (existing & LinuxSyscalls.S_IFMT) == LinuxSyscalls.S_IFDIR
                && e.type() == TarEntry.Type.DIRECTORY;
        if (existing != -1 && !keepDir) {
            removeTree(pfd, base, path);
        }
        switch (e.type()) {
            case DIRECTORY -> {
                if (!keepDir) {
                    sys.mkdirat(pfd, base, 0700);
                }
                metadata(pfd, base, e, false);
                dirTimes.put(path, new long[] {e.mtimeSeconds(), e.mtimeNanos()});
            }
            case FILE -> {
                int fd = sys.openat(
                        pfd,
                        base,
                        LinuxSyscalls.O_WRONLY
                                | LinuxSyscalls.O_CREAT
                                | LinuxSyscalls.O_EXCL
                                | LinuxSyscalls.O_NOFOLLOW
                                | LinuxSyscalls.O_CLOEXEC,
                        0600);
                try {
                    for (int n; (n = reader.read(heap, 0, heap.length)) > 0; ) {
                        MemorySegment.copy(heap, 0, native_, ValueLayout.JAVA_BYTE, 0, n);
                        sys.writeFully(fd, native_, n);
                    }
                } finally {
                    sys.close(fd);
                }
                metadata(pfd, base, e, true);
            }
            case SYMLINK -> {
                if (e.linkName().isEmpty() || e.linkName().indexOf('\0') >= 0) {
                    throw new EscapeException("is a symlink with an empty or invalid target");
                }
                sys.symlinkat(e.linkName(), pfd, base);
                metadata(pfd, base, e, true);
            }
            case HARDLINK -> {
                String target = clean(e.linkName());
                if (target.isEmpty()) {
                    throw new EscapeException("is a hard link to the image root");
                }
                int tslash = target.lastIndexOf('/');
                int tfd = openBeneath(tslash < 0 ? "" : target.substring(0, tslash));
                try {
                    sys.linkat(tfd, target.substring(tslash + 1), pfd, base);
                } catch (ErrnoException x) {
                    if (x.errno() == LinuxSyscalls.ENOENT) {
                        throw new EscapeException(
                                "is a hard link to '" + e.linkName() + "', which no earlier entry or layer made");
                    }
                    throw x;
                } finally {
                    sys.close(tfd);
                }
            }
            case CHAR_DEVICE, BLOCK_DEVICE, FIFO -> {
                int kind = e.type() == TarEntry.Type.CHAR_DEVICE
                        ? S_IFCHR
                        : e.type() == TarEntry.Type.BLOCK_DEVICE ? S_IFBLK : S_IFIFO;
                sys.mknodat(pfd, base, kind | 0600, e.devMajor(), e.devMinor());
                metadata(pfd, base, e, true);
            }
        }
        created.add(path);
    }

    /**
     * Owner first (chown clears setuid bits and file capabilities), then the full mode, then
     * extended attributes, then the time.
     */
    private void metadata(int pfd, String name, TarEntry e, boolean setTime) throws ErrnoException {
        sys.fchownat(pfd, name, e.uid(), e.gid(), LinuxSyscalls.AT_SYMLINK_NOFOLLOW);
        if (e.type() != TarEntry.Type.SYMLINK) {
            sys.fchmodat(pfd, name, e.mode() & 07777);
        }
        for (Map.Entry<String, byte[]> x : e.xattrs().entrySet()) {
            if (!kept(x.getKey()) || x.getKey().indexOf('\0') >= 0) {
                droppedXattrs++;
                continue;
            }
            // through the descriptor's /proc link, then the entry's own name, which lsetxattr does not follow
            String target = "/proc/self/fd/" + pfd + "/" + name;
            try {
                sys.lsetxattr(target, x.getKey(), x.getValue());
            } catch (ErrnoException err) {
                if (e.type() == TarEntry.Type.SYMLINK) {
                    droppedXattrs++; // user.* attributes cannot exist on a symlink
                } else {
                    throw err;
                }
            }
        }
        if (setTime) {
            sys.utimensat(pfd, name, e.mtimeSeconds(), e.mtimeNanos(), LinuxSyscalls.AT_SYMLINK_NOFOLLOW);
        }
    }

    /**
     * Attributes an image may carry. {@code trusted.*} is refused: the image becomes an overlayfs
     * lower layer on the host, and overlayfs reads its own {@code trusted.overlay.*} attributes
     * there. SELinux/IMA/EVM labels belong to the host's policy, not an image's.
     */
    static boolean kept(String name) {
        return name.startsWith("user.")
                || name.equals("security.capability")
                || name.equals("system.posix_acl_access")
                || name.equals("system.posix_acl_default");
    }

    private void opaque(int dirFd, String dirPath, Set<String> created) throws ErrnoException, IOException {
        List<String> names = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/self/fd/" + dirFd))) {
            for (Path p : ds) {
                names.add(p.getFileName().toString());
            }
        }
        for (String child : names) {
            String childPath = join(dirPath, child);
            if (!created.contains(childPath)) {
                removeTree(dirFd, child, childPath);
            } else if ((sys.lstatMode(dirFd, child) & LinuxSyscalls.S_IFMT) == LinuxSyscalls.S_IFDIR) {
                int cfd = sys.openat(
                        dirFd,
                        child,
                        LinuxSyscalls.O_PATH
                                | LinuxSyscalls.O_DIRECTORY
                                | LinuxSyscalls.O_NOFOLLOW
                                | LinuxSyscalls.O_CLOEXEC,
                        0);
                try {
                    opaque(cfd, childPath, created);
                } finally {
                    sys.close(cfd);
                }
            }
        }
    }

    /** Deletes {@code name} in {@code dirFd}, a directory with everything below it; never follows a symlink. */
    private void removeTree(int dirFd, String name, String path) throws ErrnoException, IOException {
        int mode = sys.lstatMode(dirFd, name);
        if (mode == -1) {
            return;
        }
        if ((mode & LinuxSyscalls.S_IFMT) != LinuxSyscalls.S_IFDIR) {
            sys.unlinkat(dirFd, name, 0);
        } else {
            // Through the descriptor's /proc link: the walk starts at this very directory and, like
            // every NIO walk without FOLLOW_LINKS, deletes symlinks rather than entering them.
            Files.walkFileTree(Path.of("/proc/self/fd/" + dirFd, name), new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, @Nullable IOException exc) throws IOException {
                    if (exc != null) {
                        throw exc;
                    }
                    Files.delete(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        }
        dirTimes.keySet().removeIf(k -> k.equals(path) || k.startsWith(path + "/"));
        invalidateCacheBelow(path);
    }

    private void invalidateCacheBelow(String path) throws ErrnoException {
        String cached = cachedParent;
        if (cached != null && (cached.equals(path) || cached.startsWith(path + "/"))) {
            sys.close(cachedParentFd);
            cachedParent = null;
            cachedParentFd = -1;
        }
    }

    /**
     * A descriptor of the directory {@code parent} (relative, cleaned), opened beneath the root and
     * cached for the next entries in the same directory (archives list a directory's entries
     * together). Missing directories are made (mode 0755, root) when {@code create}; otherwise -1.
     */
    private int parentFd(String parent, boolean create) throws ErrnoException, EscapeException {
        if (parent.equals(cachedParent)) {
            return cachedParentFd;
        }
        int fd;
        try {
            fd = openBeneath(parent);
        } catch (ErrnoException e) {
            if (e.errno() != LinuxSyscalls.ENOENT) {
                throw e;
            }
            if (!create) {
                return -1;
            }
            makeParents(parent);
            fd = openBeneath(parent);
        }
        if (cachedParentFd >= 0) {
            sys.close(cachedParentFd);
        }
        cachedParent = parent;
        cachedParentFd = fd;
        return fd;
    }

    private int openBeneath(String dir) throws ErrnoException, EscapeException {
        try {
            return sys.openat2(
                    rootFd,
                    dir.isEmpty() ? "." : dir,
                    LinuxSyscalls.O_PATH | LinuxSyscalls.O_DIRECTORY | LinuxSyscalls.O_CLOEXEC,
                    0,
                    BENEATH);
        } catch (ErrnoException e) {
            if (e.errno() == LinuxSyscalls.EXDEV || e.errno() == LinuxSyscalls.ELOOP) {
                throw new EscapeException("escapes the image root through a symlink in '" + dir + "'");
            }
            if (e.errno() == LinuxSyscalls.ENOTDIR) {
                throw new EscapeException("has a parent '" + dir + "' that is not a directory");
            }
            throw e;
        }
    }

    private void makeParents(String parent) throws ErrnoException, EscapeException {
        String done = "";
        for (String part : parent.split("/")) {
            int fd = openBeneath(done);
            try {
                try {
                    sys.mkdirat(fd, part, 0755);
                } catch (ErrnoException e) {
                    if (e.errno() != LinuxSyscalls.EEXIST) {
                        throw e;
                    }
                }
            } finally {
                sys.close(fd);
            }
            done = join(done, part);
        }
    }

    /**
     * The entry's path relative to the root, without {@code .} components or slashes at either
     * end; "" for the root itself. Absolute names and {@code ..} components are refused.
     */
    static String clean(String raw) throws EscapeException {
        if (raw.indexOf('\0') >= 0) {
            throw new EscapeException("has a NUL byte in its name");
        }
        if (raw.startsWith("/")) {
            throw new EscapeException("is an absolute path");
        }
        StringBuilder sb = new StringBuilder();
        for (String part : raw.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                throw new EscapeException("escapes the image root with '..'");
            }
            if (sb.length() > 0) {
                sb.append('/');
            }
            sb.append(part);
        }
        if (sb.length() > 4096) {
            throw new EscapeException("has a path longer than 4096 bytes");
        }
        return sb.toString();
    }

    private static String join(String dir, String name) {
        return dir.isEmpty() ? name : dir + "/" + name;
    }

    // ---- what the image finisher needs: small files and directories, beneath the root as well

    /** The content of a regular file (symlinks followed beneath the root), or null when absent or unsafe. */
    public byte @Nullable [] readFile(String path, int maxBytes) {
        try {
            String clean = clean(path);
            int fd = sys.openat2(rootFd, clean, LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_CLOEXEC, 0, BENEATH);
            try {
                Path proc = Path.of("/proc/self/fd/" + fd);
                if (!Files.isRegularFile(proc) || Files.size(proc) > maxBytes) {
                    return null;
                }
                return Files.readAllBytes(proc);
            } finally {
                sys.close(fd);
            }
        } catch (ErrnoException | EscapeException | IOException e) {
            return null;
        }
    }

    /** Whether {@code path} resolves, beneath the root, to an executable regular file. */
    public boolean isExecutable(String path) {
        try {
            int fd = sys.openat2(rootFd, clean(path), LinuxSyscalls.O_PATH | LinuxSyscalls.O_CLOEXEC, 0, BENEATH);
            try {
                Path proc = Path.of("/proc/self/fd/" + fd);
                return Files.isRegularFile(proc)
                        && (Files.getPosixFilePermissions(proc).stream()
                                .anyMatch(p -> p.name().endsWith("EXECUTE")));
            } finally {
                sys.close(fd);
            }
        } catch (ErrnoException | EscapeException | IOException e) {
            return false;
        }
    }

    /** Whether anything (a dangling symlink included) is at {@code path}. */
    public boolean exists(String path) {
        try {
            String clean = clean(path);
            int slash = clean.lastIndexOf('/');
            int pfd = parentFd(slash < 0 ? "" : clean.substring(0, slash), false);
            return pfd >= 0 && sys.lstatMode(pfd, clean.substring(slash + 1)) != -1;
        } catch (ErrnoException | EscapeException e) {
            return false;
        }
    }

    /** Makes a directory when nothing is at {@code path} (parents included); false if something is. */
    public boolean makeDirectory(String path, int mode, long uid, long gid) throws IOException {
        try {
            String clean = clean(path);
            int slash = clean.lastIndexOf('/');
            String name = clean.substring(slash + 1);
            int pfd = parentFd(slash < 0 ? "" : clean.substring(0, slash), true);
            if (sys.lstatMode(pfd, name) != -1) {
                return false;
            }
            sys.mkdirat(pfd, name, 0700);
            sys.fchownat(pfd, name, uid, gid, LinuxSyscalls.AT_SYMLINK_NOFOLLOW);
            sys.fchmodat(pfd, name, mode);
            return true;
        } catch (ErrnoException | EscapeException e) {
            throw new IOException("cannot make " + path + " in the image: " + e.getMessage(), e);
        }
    }

    /**
     * Replaces (or creates) the regular file {@code path} with {@code content}, keeping the old
     * file's owner and mode when there was one. Refuses a symlink at {@code path}.
     */
    public void writeFile(String path, byte[] content, int mode) throws IOException {
        try {
            String clean = clean(path);
            int slash = clean.lastIndexOf('/');
            String name = clean.substring(slash + 1);
            int pfd = parentFd(slash < 0 ? "" : clean.substring(0, slash), true);
            int old = sys.lstatMode(pfd, name);
            if (old != -1 && (old & LinuxSyscalls.S_IFMT) != LinuxSyscalls.S_IFREG) {
                throw new IOException(path + " in the image is not a regular file");
            }
            if (old != -1) {
                sys.unlinkat(pfd, name, 0);
            }
            int fd = sys.openat(
                    pfd,
                    name,
                    LinuxSyscalls.O_WRONLY
                            | LinuxSyscalls.O_CREAT
                            | LinuxSyscalls.O_EXCL
                            | LinuxSyscalls.O_NOFOLLOW
                            | LinuxSyscalls.O_CLOEXEC,
                    0600);
            try {
                for (int off = 0; off < content.length; off += BUFFER) {
                    int n = Math.min(BUFFER, content.length - off);
                    MemorySegment.copy(content, off, native_, ValueLayout.JAVA_BYTE, 0, n);
                    sys.writeFully(fd, native_, n);
                }
            } finally {
                sys.close(fd);
            }
            sys.fchownat(pfd, name, 0, 0, LinuxSyscalls.AT_SYMLINK_NOFOLLOW);
            sys.fchmodat(pfd, name, old != -1 ? old & 07777 : mode);
        } catch (ErrnoException | EscapeException e) {
            throw new IOException("cannot write " + path + " in the image: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            if (cachedParentFd >= 0) {
                sys.close(cachedParentFd);
            }
            sys.close(rootFd);
        } catch (ErrnoException e) {
            // closing a descriptor cannot fail in a way that matters here
        } finally {
            sys.close();
            arena.close();
        }
    }

    /** An entry that would write outside the root, or is malformed in a way that could. */
    static final class EscapeException extends Exception {
        private static final long serialVersionUID = 1L;

        EscapeException(String message) {
            super(message);
        }
    }
}
