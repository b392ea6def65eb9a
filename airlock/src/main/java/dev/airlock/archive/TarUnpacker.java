package dev.airlock.archive;

import static dev.airlock.host.LinuxSyscalls.EEXIST;
import static dev.airlock.host.LinuxSyscalls.EISDIR;
import static dev.airlock.host.LinuxSyscalls.ELOOP;
import static dev.airlock.host.LinuxSyscalls.ENOENT;
import static dev.airlock.host.LinuxSyscalls.ENOTDIR;
import static dev.airlock.host.LinuxSyscalls.O_CLOEXEC;
import static dev.airlock.host.LinuxSyscalls.O_CREAT;
import static dev.airlock.host.LinuxSyscalls.O_DIRECTORY;
import static dev.airlock.host.LinuxSyscalls.O_EXCL;
import static dev.airlock.host.LinuxSyscalls.O_NOFOLLOW;
import static dev.airlock.host.LinuxSyscalls.O_RDONLY;
import static dev.airlock.host.LinuxSyscalls.O_WRONLY;

import dev.airlock.host.HostFiles;
import dev.airlock.host.LinuxSyscalls;
import dev.airlock.host.LinuxSyscalls.ErrnoException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Unpacks a tar stream made by a sandbox into a host directory, trusting nothing in it. Every
 * entry must lie under the one directory being copied ({@code top}), which lands at {@code
 * target}; what is written:
 *
 * <ul>
 *   <li>regular files, directories, and symlinks whose target stays inside {@code target} (a
 *       relative target that only climbs at its start, never below {@code target}), and hard
 *       links to a file this same unpack wrote;
 *   <li>with the permission bits only (no setuid, setgid or sticky bit), owned by whoever runs
 *       this (owners in the archive are ignored);
 *   <li>never through a symlink: each path component is opened with {@code O_NOFOLLOW} relative
 *       to its parent's descriptor, a file is created with {@code O_EXCL} after unlinking what was
 *       there, so nothing already in {@code target} (or put there meanwhile) redirects a write.
 * </ul>
 *
 * Absolute names, {@code ..} components, devices, FIFOs, sparse files and anything else are
 * refused with an {@link ArchiveRefusedException} naming the entry, as are archives past the
 * {@link Limits}. The header bytes read for any one entry (long names, pax records) are capped
 * before the tar library buffers them.
 */
public final class TarUnpacker implements AutoCloseable {
    /** Caps on what one archive may make the host do. */
    public record Limits(long maxEntries, long maxBytes, int maxPathBytes, int maxHeaderBytes) {
        /** For {@code airlock cp}: far above a real tree, far below what would hurt the host. */
        public static final Limits DEFAULT = new Limits(1_000_000, 64L << 30, 4096, 1 << 20);
    }

    /** What an unpack wrote: entries and file bytes. */
    public record Unpacked(long entries, long bytes) {}

    private static final int NAME_MAX = 255;
    private static final int CHUNK = 64 * 1024;
    private static final int DIR_OPEN = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

    private final LinuxSyscalls sys = new LinuxSyscalls();
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buffer = arena.allocate(CHUNK);
    private final byte[] chunk = new byte[CHUNK];
    private final String top;
    private final Limits limits;
    private final int rootFd;
    // The directory the last entry went into, as components below the root, and a descriptor for
    // each component: tar lists a tree depth first, so most entries reuse them.
    private final List<String> openPath = new ArrayList<>();
    private final List<Integer> openFds = new ArrayList<>();
    // Files written by this unpack (relative paths): the only things a hard link may point at.
    private final Set<String> writtenFiles = new HashSet<>();
    private long entries;
    private long bytes;

    private TarUnpacker(int rootFd, String top, Limits limits) {
        this.rootFd = rootFd;
        this.top = top;
        this.limits = limits;
    }

    /**
     * Unpacks {@code archive}, whose entries are {@code top} and {@code top/...}, into {@code
     * target}, created if missing. {@code target}'s parent is the caller's (it may be reached
     * through symlinks); {@code target} itself must be a real directory, not a symlink. When this
     * call created {@code target} and refuses the archive, it removes {@code target} again.
     *
     * @throws ArchiveRefusedException if the archive holds anything listed in the class comment
     * @throws IOException if reading the archive or writing the host files fails
     */
    public static Unpacked unpack(InputStream archive, Path target, String top, Limits limits) throws IOException {
        Path absolute = target.toAbsolutePath().normalize();
        Path parent = absolute.getParent();
        Path leaf = absolute.getFileName();
        if (parent == null || leaf == null) {
            throw new IOException("cannot unpack into " + target + ": name a directory below /");
        }
        Files.createDirectories(parent);
        boolean created;
        int rootFd;
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int parentFd = sys.open(parent.toString(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            try {
                created = mkdirIfMissing(sys, parentFd, leaf.toString(), 0755);
                rootFd = sys.openat(parentFd, leaf.toString(), DIR_OPEN, 0);
            } catch (ErrnoException e) {
                if (e.errno() == ELOOP || e.errno() == ENOTDIR) {
                    throw new IOException(target + " is a symlink or not a directory; name a directory to copy into");
                }
                throw new IOException("cannot create " + target + ": " + e.getMessage(), e);
            } finally {
                closeQuietly(sys, parentFd);
            }
        } catch (ErrnoException e) {
            throw new IOException("cannot open " + parent + ": " + e.getMessage(), e);
        }
        try (TarUnpacker u = new TarUnpacker(rootFd, top, limits)) {
            return u.unpackAll(archive);
        } catch (ArchiveRefusedException e) {
            if (created) {
                HostFiles.deleteTree(absolute);
                throw new ArchiveRefusedException(e.getMessage() + "; nothing was kept");
            }
            throw new ArchiveRefusedException(e.getMessage() + "; what came before it is in " + target);
        }
    }

    private Unpacked unpackAll(InputStream raw) throws IOException {
        HeaderBudget metered = new HeaderBudget(raw);
        TarArchiveInputStream tar = new TarArchiveInputStream(metered);
        while (true) {
            metered.limitTo(limits.maxHeaderBytes());
            TarArchiveEntry e;
            try {
                e = tar.getNextEntry();
            } catch (ArchiveRefusedException refused) {
                throw refused;
            } catch (IOException | RuntimeException broken) {
                // commons-compress reports damaged headers as IOException or IllegalArgumentException.
                throw new ArchiveRefusedException(
                        "the archive is damaged after " + entries + " entries (" + broken.getMessage() + ")");
            }
            metered.unlimited();
            if (e == null) {
                return new Unpacked(entries, bytes);
            }
            if (++entries > limits.maxEntries()) {
                throw refuse(e, "the archive has more than " + limits.maxEntries() + " entries");
            }
            unpackEntry(tar, e);
        }
    }

    private void unpackEntry(TarArchiveInputStream tar, TarArchiveEntry e) throws IOException {
        if (!e.isCheckSumOK()) {
            throw refuse(e, "its header checksum is wrong");
        }
        List<String> path = relativePath(e, e.getName(), "name");
        boolean regular = isRegular(e);
        if (!regular && e.getSize() != 0) {
            throw refuse(e, "it is not a regular file but carries " + e.getSize() + " bytes of data");
        }
        if (path.isEmpty()) {
            if (!e.isDirectory()) {
                throw refuse(e, "it should be the directory being copied");
            }
            return; // the target itself, made by unpack()
        }
        String name = path.getLast();
        String where = String.join("/", path);
        try {
            if (e.isDirectory()) {
                int parent = directory(path.subList(0, path.size() - 1), e);
                mkdirIfMissing(sys, parent, name, (e.getMode() & 0777) | 0700);
                directory(path, e); // opens it without following: a symlink there is refused
            } else if (e.isSymbolicLink()) {
                String target = e.getLinkName();
                checkSymlinkTarget(e, path, target);
                int parent = directory(path.subList(0, path.size() - 1), e);
                removeExisting(parent, name, e);
                sys.symlinkat(target, parent, name);
                writtenFiles.remove(where);
            } else if (e.isLink()) {
                List<String> linked = relativePath(e, e.getLinkName(), "hard link target");
                String linkedPath = String.join("/", linked);
                if (linked.isEmpty() || !writtenFiles.contains(linkedPath)) {
                    throw refuse(
                            e,
                            "it is a hard link to " + e.getLinkName()
                                    + ", which is not a file this copy wrote before it");
                }
                int from = openDirectoryOnce(linked.subList(0, linked.size() - 1), e);
                try {
                    int parent = directory(path.subList(0, path.size() - 1), e);
                    removeExisting(parent, name, e);
                    sys.linkat(from, linked.getLast(), parent, name);
                } finally {
                    closeQuietly(sys, from);
                }
                writtenFiles.add(where);
            } else if (regular) {
                writeFile(tar, e, path, name);
                writtenFiles.add(where);
            } else {
                throw refuse(
                        e, "it is " + describeType(e) + "; only regular files, directories and symlinks are copied");
            }
        } catch (ErrnoException x) {
            throw new IOException("cannot write " + where + ": " + x.getMessage(), x);
        }
    }

    private void writeFile(TarArchiveInputStream tar, TarArchiveEntry e, List<String> path, String name)
            throws IOException, ErrnoException {
        long size = e.getSize();
        if (size < 0 || size > limits.maxBytes() - bytes) {
            throw refuse(
                    e, "its " + size + " bytes would take the copy past its limit of " + limits.maxBytes() + " bytes");
        }
        int parent = directory(path.subList(0, path.size() - 1), e);
        removeExisting(parent, name, e);
        int fd = sys.openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, e.getMode() & 0777);
        try {
            long left = size;
            while (left > 0) {
                int n;
                try {
                    n = tar.read(chunk, 0, (int) Math.min(CHUNK, left));
                } catch (ArchiveRefusedException x) {
                    throw x;
                } catch (IOException | RuntimeException x) {
                    throw refuse(e, "the archive is damaged inside this file (" + x.getMessage() + ")");
                }
                if (n < 0) {
                    throw refuse(e, "the archive ends " + left + " bytes before the end of this file");
                }
                MemorySegment.copy(chunk, 0, buffer, ValueLayout.JAVA_BYTE, 0, n);
                sys.writeFully(fd, buffer, n);
                left -= n;
            }
            bytes += size;
            FileTime mtime = e.getLastModifiedTime();
            if (mtime != null) {
                var instant = mtime.toInstant();
                sys.futimens(fd, instant.getEpochSecond(), instant.getNano());
            }
        } finally {
            closeQuietly(sys, fd);
        }
    }

    private static boolean isRegular(TarArchiveEntry e) {
        byte flag = e.getLinkFlag();
        return !e.isDirectory()
                && !e.isSparse()
                && (flag == TarConstants.LF_NORMAL
                        || flag == TarConstants.LF_OLDNORM
                        || flag == TarConstants.LF_CONTIG);
    }

    private static String describeType(TarArchiveEntry e) {
        if (e.isCharacterDevice()) {
            return "a character device";
        }
        if (e.isBlockDevice()) {
            return "a block device";
        }
        if (e.isFIFO()) {
            return "a FIFO";
        }
        if (e.isSparse()) {
            return "a sparse file";
        }
        return "an entry of tar type '" + (char) e.getLinkFlag() + "'";
    }

    /**
     * The entry's components below {@code top}: an absolute name, a {@code ..}, a name outside
     * {@code top} or one past the length limits is refused; empty and {@code .} components are
     * dropped.
     */
    private List<String> relativePath(TarArchiveEntry e, String name, String what) throws ArchiveRefusedException {
        if (name.isEmpty()) {
            throw refuse(e, "its " + what + " is empty");
        }
        if (name.getBytes(StandardCharsets.UTF_8).length > limits.maxPathBytes()) {
            throw refuse(e, "its " + what + " is longer than " + limits.maxPathBytes() + " bytes");
        }
        if (name.startsWith("/")) {
            throw refuse(e, "its " + what + " is an absolute path");
        }
        List<String> parts = components(e, name, what);
        if (parts.contains("..")) {
            throw refuse(e, "its " + what + " has a '..' component");
        }
        if (parts.isEmpty() || !parts.getFirst().equals(top)) {
            throw refuse(e, "its " + what + " is outside " + top + ", the directory being copied");
        }
        return parts.subList(1, parts.size());
    }

    private static List<String> components(TarArchiveEntry e, String name, String what) throws ArchiveRefusedException {
        if (name.indexOf('\0') >= 0) {
            throw refuse(e, "its " + what + " contains a NUL byte");
        }
        List<String> parts = new ArrayList<>();
        for (String c : name.split("/")) {
            if (c.isEmpty() || c.equals(".")) {
                continue;
            }
            if (c.getBytes(StandardCharsets.UTF_8).length > NAME_MAX) {
                throw refuse(e, "its " + what + " has a component longer than " + NAME_MAX + " bytes");
            }
            parts.add(c);
        }
        return parts;
    }

    /**
     * A symlink may point only inside the target: relative, its {@code ..} components all at the
     * start and no more of them than the link's own depth. A {@code ..} after a name could climb
     * out of the tree through another symlink, so it is refused too.
     */
    private void checkSymlinkTarget(TarArchiveEntry e, List<String> path, String target)
            throws ArchiveRefusedException {
        if (target.isEmpty()) {
            throw refuse(e, "it is a symlink with an empty target");
        }
        if (target.getBytes(StandardCharsets.UTF_8).length > limits.maxPathBytes()) {
            throw refuse(e, "its symlink target is longer than " + limits.maxPathBytes() + " bytes");
        }
        if (target.startsWith("/")) {
            throw refuse(e, "it is a symlink to " + target + ", an absolute path outside the copy");
        }
        int up = 0;
        boolean named = false;
        for (String c : components(e, target, "symlink target")) {
            if (c.equals("..")) {
                if (named) {
                    throw refuse(e, "it is a symlink to " + target + ", which climbs with '..' after a name");
                }
                up++;
            } else {
                named = true;
            }
        }
        if (up > path.size() - 1) {
            throw refuse(e, "it is a symlink to " + target + ", which points outside the copy");
        }
    }

    /** Opens (creating what is missing) the directory at {@code dirs} below the root; the caller must not close it. */
    private int directory(List<String> dirs, TarArchiveEntry e) throws IOException, ErrnoException {
        int same = 0;
        while (same < dirs.size()
                && same < openPath.size()
                && openPath.get(same).equals(dirs.get(same))) {
            same++;
        }
        while (openPath.size() > same) {
            openPath.removeLast();
            closeQuietly(sys, openFds.removeLast());
        }
        for (int i = same; i < dirs.size(); i++) {
            int parent = i == 0 ? rootFd : openFds.get(i - 1);
            mkdirIfMissing(sys, parent, dirs.get(i), 0755);
            int fd;
            try {
                fd = sys.openat(parent, dirs.get(i), DIR_OPEN, 0);
            } catch (ErrnoException x) {
                throw notADirectory(x, e);
            }
            openPath.add(dirs.get(i));
            openFds.add(fd);
        }
        return dirs.isEmpty() ? rootFd : openFds.getLast();
    }

    /** A descriptor for a directory below the root, outside the cache; the caller closes it. */
    private int openDirectoryOnce(List<String> dirs, TarArchiveEntry e) throws IOException, ErrnoException {
        int fd = sys.openat(rootFd, ".", DIR_OPEN, 0);
        for (String d : dirs) {
            int next;
            try {
                next = sys.openat(fd, d, DIR_OPEN, 0);
            } catch (ErrnoException x) {
                closeQuietly(sys, fd);
                throw notADirectory(x, e);
            }
            closeQuietly(sys, fd);
            fd = next;
        }
        return fd;
    }

    /** Makes room for a new file, symlink or link: whatever non-directory was there goes, unfollowed. */
    private void removeExisting(int parent, String name, TarArchiveEntry e) throws IOException, ErrnoException {
        try {
            sys.unlinkat(parent, name, 0);
        } catch (ErrnoException x) {
            if (x.errno() == EISDIR) {
                throw refuse(e, "a directory of that name is already there");
            }
            if (x.errno() != ENOENT) {
                throw x;
            }
        }
    }

    /** Creates a directory; true if it was made, false if something was there already. */
    private static boolean mkdirIfMissing(LinuxSyscalls sys, int parent, String name, int mode) throws ErrnoException {
        try {
            sys.mkdirat(parent, name, mode);
            return true;
        } catch (ErrnoException x) {
            if (x.errno() == EEXIST) {
                return false;
            }
            throw x;
        }
    }

    private static IOException notADirectory(ErrnoException x, TarArchiveEntry e) {
        if (x.errno() == ELOOP || x.errno() == ENOTDIR) {
            return refuse(
                    e,
                    "a directory on its path is a symlink or not a directory (copies never write through"
                            + " symlinks)");
        }
        return new IOException("cannot open a directory for entry '" + e.getName() + "': " + x.getMessage(), x);
    }

    private static ArchiveRefusedException refuse(TarArchiveEntry e, String why) {
        return new ArchiveRefusedException("refused entry '" + e.getName() + "': " + why);
    }

    private static void closeQuietly(LinuxSyscalls sys, int fd) {
        try {
            sys.close(fd);
        } catch (ErrnoException ignored) {
            // Linux releases the descriptor even when close reports an error.
        }
    }

    @Override
    public void close() {
        for (int fd : openFds) {
            closeQuietly(sys, fd);
        }
        closeQuietly(sys, rootFd);
        arena.close();
        sys.close();
    }

    /**
     * Counts the bytes the tar library reads while it looks for the next entry (headers, long
     * names, pax records) and refuses the archive once they pass the budget, before the library
     * has buffered them all.
     */
    private static final class HeaderBudget extends FilterInputStream {
        private long budget = Long.MAX_VALUE;
        private long left = Long.MAX_VALUE;

        HeaderBudget(InputStream in) {
            super(in);
        }

        void limitTo(long budget) {
            this.budget = budget;
            left = budget;
        }

        void unlimited() {
            left = Long.MAX_VALUE;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                charge(1);
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) {
                charge(n);
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long skipped = super.skip(Math.min(n, left));
            charge(skipped);
            return skipped;
        }

        private void charge(long n) throws ArchiveRefusedException {
            left -= n;
            if (left < 0) {
                throw new ArchiveRefusedException(
                        "refused the archive: the headers of one entry (long names, pax records) take more than "
                                + budget + " bytes");
            }
        }
    }
}
