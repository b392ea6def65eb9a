package dev.airlock.host;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Map;

/**
 * Foreign-function bindings of the few libc calls Airlock makes directly: what a KVM client needs
 * ({@code open}, {@code close}, {@code ioctl}, {@code mmap}, {@code munmap}) and the overlay
 * mounts of container sandboxes ({@code mount}, {@code umount2}: a syscall instead of a forked
 * mount(8) on the container start path), with {@code errno} captured by the linker right after
 * each call (reading it later from Java would be unreliable, the JVM itself makes calls).
 *
 * <p>An instance owns a small native buffer for the captured call state, so it is confined to the
 * thread that created it; create one per thread and close it when done.
 */
public final class LinuxSyscalls implements AutoCloseable {
    public static final int O_RDWR = 0x2;
    public static final int O_CLOEXEC = 0x80000;

    public static final int PROT_READ = 0x1;
    public static final int PROT_WRITE = 0x2;
    public static final int MAP_SHARED = 0x01;
    public static final int MAP_PRIVATE = 0x02;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;

    public static final int MNT_DETACH = 0x2;

    public static final int O_RDONLY = 0x0;
    public static final int O_WRONLY = 0x1;
    public static final int O_CREAT = 0x40;
    public static final int O_TRUNC = 0x200;
    public static final int SEEK_END = 2;
    public static final int SEEK_DATA = 3;
    public static final int FALLOC_FL_KEEP_SIZE = 0x01;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    public static final int SEEK_HOLE = 4;
    public static final int ENXIO = 6;

    public static final long SYS_PIDFD_OPEN = 434;
    public static final long SYS_PROCESS_MADVISE = 440;
    public static final int MADV_PAGEOUT = 21;
    /** The most iovecs one call takes (UIO_MAXIOV). */
    public static final int IOV_MAX = 1024;

    public static final short POLLIN = 0x1;
    public static final int ESRCH = 3;

    public static final int EINTR = 4;
    public static final int EAGAIN = 11;

    // Building a directory tree beneath a root (image layers): the *at calls and their flags.
    // O_DIRECTORY and O_NOFOLLOW are the two open flags whose values differ between architectures.
    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    public static final int O_DIRECTORY = AARCH64 ? 0x4000 : 0x10000;
    public static final int O_NOFOLLOW = AARCH64 ? 0x8000 : 0x20000;
    public static final int O_EXCL = 0x80;
    public static final int O_PATH = 0x200000;
    public static final int O_APPEND = 0x400;
    public static final int AT_FDCWD = -100;
    public static final int AT_SYMLINK_NOFOLLOW = 0x100;
    public static final int AT_REMOVEDIR = 0x200;
    public static final long RESOLVE_NO_MAGICLINKS = 0x02;
    public static final long RESOLVE_BENEATH = 0x08;
    public static final long SYS_OPENAT2 = 437;
    // The new mount API (the same numbers on every architecture): no glibc 2.36 wrappers.
    private static final long SYS_OPEN_TREE = 428;
    private static final long SYS_MOVE_MOUNT = 429;
    private static final long SYS_MOUNT_SETATTR = 442;
    private static final long OPEN_TREE_CLONE = 1;
    private static final long MOUNT_ATTR_IDMAP = 0x00100000;
    private static final long MOVE_MOUNT_F_EMPTY_PATH = 0x4;
    public static final int S_IFMT = 0170000;
    public static final int S_IFDIR = 0040000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFLNK = 0120000;
    public static final int S_IFSOCK = 0140000;
    public static final int AT_EMPTY_PATH = 0x1000;
    public static final int ENOENT = 2;
    public static final int EEXIST = 17;
    public static final int ENOTDIR = 20;
    public static final int EXDEV = 18;
    public static final int EISDIR = 21;
    public static final int ELOOP = 40;

    // inotify: a file's writes as events (FileWriteWatch).
    public static final int IN_MODIFY = 0x2;
    public static final int IN_IGNORED = 0x8000;
    public static final int IN_Q_OVERFLOW = 0x4000;
    public static final int IN_DONT_FOLLOW = 0x02000000;
    public static final int IN_CLOEXEC = O_CLOEXEC;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    // int open(const char *path, int flags, ...): the mode is variadic.
    private static final MethodHandle OPEN = downcall(
            "open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE =
            downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    // int ioctl(int fd, unsigned long request, ...): one variadic argument, integer or pointer.
    private static final MethodHandle IOCTL_LONG = downcall(
            "ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_PTR = downcall(
            "ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));
    // void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    private static final MethodHandle MMAP = downcall(
            "mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG),
            CAPTURE_ERRNO);
    private static final MethodHandle MUNMAP =
            downcall("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), CAPTURE_ERRNO);
    // int mount(const char *source, const char *target, const char *type, unsigned long flags, const void *data)
    private static final MethodHandle MOUNT = downcall(
            "mount", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS), CAPTURE_ERRNO);
    private static final MethodHandle UMOUNT2 =
            downcall("umount2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    // off_t lseek(int fd, off_t offset, int whence)
    private static final MethodHandle LSEEK =
            downcall("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    // ssize_t copy_file_range(int in, off_t *off_in, int out, off_t *off_out, size_t len, unsigned flags)
    private static final MethodHandle COPY_FILE_RANGE = downcall(
            "copy_file_range",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT),
            CAPTURE_ERRNO);
    private static final MethodHandle FTRUNCATE =
            downcall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FALLOCATE = downcall(
            "fallocate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    // long syscall(long number, ...): pidfd_open has no libc wrapper in glibc 2.36.
    private static final MethodHandle SYSCALL2 = downcall(
            "syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(1));
    // int poll(struct pollfd *fds, nfds_t n, int timeout)
    private static final MethodHandle POLL =
            downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle STRERROR = downcall("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    // long syscall(long number, ...) with four arguments: openat2 has no glibc 2.36 wrapper.
    private static final MethodHandle SYSCALL4 = downcall(
            "syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(1));
    // long syscall(long number, ...) with five arguments: process_madvise has no glibc 2.36 wrapper.
    private static final MethodHandle SYSCALL5 = downcall(
            "syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle OPENAT = downcall(
            "openat",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(3));
    private static final MethodHandle MKDIRAT =
            downcall("mkdirat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle MKNODAT =
            downcall("mknodat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle SYMLINKAT =
            downcall("symlinkat", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), CAPTURE_ERRNO);
    private static final MethodHandle LINKAT = downcall(
            "linkat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle UNLINKAT =
            downcall("unlinkat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FCHOWNAT = downcall(
            "fchownat",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT),
            CAPTURE_ERRNO);
    private static final MethodHandle FCHMODAT =
            downcall("fchmodat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle LSETXATTR = downcall(
            "lsetxattr",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT),
            CAPTURE_ERRNO);
    private static final MethodHandle UTIMENSAT =
            downcall("utimensat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FSTATAT =
            downcall("fstatat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle WRITE =
            downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle READ =
            downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle INOTIFY_INIT1 =
            downcall("inotify_init1", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle INOTIFY_ADD_WATCH =
            downcall("inotify_add_watch", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle INOTIFY_RM_WATCH =
            downcall("inotify_rm_watch", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    // int futimens(int fd, const struct timespec times[2])
    private static final MethodHandle FUTIMENS =
            downcall("futimens", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO);

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol =
                LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment callState = arena.allocate(CALL_STATE);

    public LinuxSyscalls() {}

    private int errno() {
        return (int) ERRNO.get(callState, 0L);
    }

    /** {@code open(path, flags)}; returns the new file descriptor. */
    public int open(String path, int flags) throws ErrnoException {
        return open(path, flags, 0);
    }

    /** {@code open(path, flags, mode)}, for {@link #O_CREAT}; returns the new file descriptor. */
    public int open(String path, int flags, int mode) throws ErrnoException {
        int fd;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment cPath = call.allocateFrom(path);
            try {
                fd = (int) OPEN.invokeExact(callState, cPath, flags, mode);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        if (fd < 0) {
            throw new ErrnoException("open(" + path + ")", errno());
        }
        return fd;
    }

    /** {@code close(fd)}; errors are reported but the descriptor is gone either way on Linux. */
    public void close(int fd) throws ErrnoException {
        int rc;
        try {
            rc = (int) CLOSE.invokeExact(callState, fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            throw new ErrnoException("close(" + fd + ")", errno());
        }
    }

    /** {@code ioctl(fd, request, arg)} with an integer argument; returns the non-negative result. */
    public int ioctl(int fd, long request, long arg, String what) throws ErrnoException {
        int rc;
        try {
            rc = (int) IOCTL_LONG.invokeExact(callState, fd, request, arg);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            throw new ErrnoException("ioctl(" + what + ")", errno());
        }
        return rc;
    }

    /** {@code ioctl(fd, request, ptr)} with a pointer argument; returns the non-negative result. */
    public int ioctl(int fd, long request, MemorySegment arg, String what) throws ErrnoException {
        int rc;
        try {
            rc = (int) IOCTL_PTR.invokeExact(callState, fd, request, arg);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            throw new ErrnoException("ioctl(" + what + ")", errno());
        }
        return rc;
    }

    /**
     * {@code ioctl(fd, request, 0)} retried while it fails with {@code EINTR} or {@code EAGAIN} (a
     * signal may interrupt {@code KVM_RUN}).
     */
    public int ioctlRetrying(int fd, long request, String what) throws ErrnoException {
        while (true) {
            try {
                return ioctl(fd, request, 0L, what);
            } catch (ErrnoException e) {
                if (e.errno() != EINTR && e.errno() != EAGAIN) {
                    throw e;
                }
            }
        }
    }

    /** {@code mmap(NULL, length, prot, flags, fd, offset)}, as a segment of {@code length} bytes. */
    public MemorySegment mmap(long length, int prot, int flags, int fd, long offset, String what)
            throws ErrnoException {
        MemorySegment addr;
        try {
            addr = (MemorySegment) MMAP.invokeExact(callState, MemorySegment.NULL, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (addr.address() == -1L) { // MAP_FAILED
            throw new ErrnoException("mmap(" + what + ")", errno());
        }
        return addr.reinterpret(length);
    }

    /** {@code munmap(segment)}. */
    public void munmap(MemorySegment mapping) throws ErrnoException {
        int rc;
        try {
            rc = (int) MUNMAP.invokeExact(callState, mapping, mapping.byteSize());
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            throw new ErrnoException("munmap", errno());
        }
    }

    /** {@code mount(source, target, type, flags, data)} with a text {@code data} (mount options). */
    public void mount(String source, String target, String type, long flags, String data) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) MOUNT.invokeExact(
                        callState,
                        call.allocateFrom(source),
                        call.allocateFrom(target),
                        call.allocateFrom(type),
                        flags,
                        call.allocateFrom(data));
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        if (rc < 0) {
            throw new ErrnoException("mount(" + type + " on " + target + ")", errno());
        }
    }

    /** {@code umount2(target, flags)}. */
    public void umount2(String target, int flags) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) UMOUNT2.invokeExact(callState, call.allocateFrom(target), flags);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        if (rc < 0) {
            throw new ErrnoException("umount2(" + target + ")", errno());
        }
    }

    /**
     * {@code lseek(fd, offset, whence)}; returns the new offset, or -1 when {@link #SEEK_DATA}
     * finds no data after {@code offset} ({@code ENXIO}).
     */
    public long lseek(int fd, long offset, int whence) throws ErrnoException {
        long rc;
        try {
            rc = (long) LSEEK.invokeExact(callState, fd, offset, whence);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            if (errno() == ENXIO) {
                return -1;
            }
            throw new ErrnoException("lseek", errno());
        }
        return rc;
    }

    /** Copies {@code length} bytes at {@code offset} of {@code in} to the same offset of {@code out}, in the kernel. */
    public void copyFileRange(int in, int out, long offset, long length) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment offIn = call.allocate(JAVA_LONG);
            MemorySegment offOut = call.allocate(JAVA_LONG);
            offIn.set(JAVA_LONG, 0, offset);
            offOut.set(JAVA_LONG, 0, offset);
            long left = length;
            while (left > 0) {
                long n;
                try {
                    n = (long) COPY_FILE_RANGE.invokeExact(callState, in, offIn, out, offOut, left, 0);
                } catch (Throwable t) {
                    throw rethrow(t);
                }
                if (n < 0) {
                    if (errno() == EINTR) {
                        continue;
                    }
                    throw new ErrnoException("copy_file_range", errno());
                }
                if (n == 0) {
                    throw new ErrnoException("copy_file_range (source shorter than expected)", 5);
                }
                left -= n;
            }
        }
    }

    /** {@code ftruncate(fd, length)}. */
    public void ftruncate(int fd, long length) throws ErrnoException {
        int rc;
        try {
            rc = (int) FTRUNCATE.invokeExact(callState, fd, length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            throw new ErrnoException("ftruncate", errno());
        }
    }

    /**
     * Frees the disk blocks of {@code [offset, offset + length)} of {@code fd}'s file, which then
     * reads as zeros; its size and every writer's offset stay as they were
     * ({@code fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)}).
     */
    public void punchHole(int fd, long offset, long length) throws ErrnoException {
        int rc;
        try {
            rc = (int) FALLOCATE.invokeExact(callState, fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, offset, length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            throw new ErrnoException("fallocate(PUNCH_HOLE)", errno());
        }
    }

    /** {@code pidfd_open(pid, 0)}: a descriptor that becomes readable when the process exits; -1 if it is gone. */
    public int pidfdOpen(long pid) throws ErrnoException {
        long rc;
        try {
            rc = (long) SYSCALL2.invokeExact(callState, SYS_PIDFD_OPEN, pid, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0) {
            if (errno() == ESRCH) {
                return -1;
            }
            throw new ErrnoException("pidfd_open(" + pid + ")", errno());
        }
        return (int) rc;
    }

    /**
     * {@code process_madvise(pidfd, iov, n, advice, 0)} over the address ranges {@code starts[i],
     * lengths[i]} (at most {@link #IOV_MAX}) of the process behind {@code pidfd}; returns the
     * bytes advised.
     */
    public long processMadvise(int pidfd, long[] starts, long[] lengths, int advice) throws ErrnoException {
        if (starts.length != lengths.length || starts.length > IOV_MAX) {
            throw new IllegalArgumentException("process_madvise takes 1 to " + IOV_MAX + " ranges");
        }
        try (Arena call = Arena.ofConfined()) {
            MemorySegment iov = call.allocate(16L * starts.length, 8); // struct iovec { void *base; size_t len; }
            for (int i = 0; i < starts.length; i++) {
                iov.set(JAVA_LONG, 16L * i, starts[i]);
                iov.set(JAVA_LONG, 16L * i + 8, lengths[i]);
            }
            long rc;
            try {
                rc = (long) SYSCALL5.invokeExact(
                        callState,
                        SYS_PROCESS_MADVISE,
                        (long) pidfd,
                        iov.address(),
                        (long) starts.length,
                        (long) advice,
                        0L);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (rc < 0) {
                throw new ErrnoException("process_madvise", errno());
            }
            return rc;
        }
    }

    /** Polls one descriptor for input; true when it is readable (or hung up) within {@code timeoutMillis}. */
    public boolean pollIn(int fd, int timeoutMillis) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment pfd = call.allocate(8, 4); // struct pollfd { int fd; short events; short revents; }
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(java.lang.foreign.ValueLayout.JAVA_SHORT, 4, POLLIN);
            int rc;
            try {
                rc = (int) POLL.invokeExact(callState, pfd, 1L, timeoutMillis);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (rc < 0) {
                if (errno() == EINTR) {
                    return false;
                }
                throw new ErrnoException("poll", errno());
            }
            return rc > 0;
        }
    }

    /**
     * {@code openat2(dirfd, path, {flags, mode, resolve})}: the kernel resolves {@code path} and
     * refuses ({@link #EXDEV}) any step, {@code ..} or symlink, that would leave {@code dirfd}
     * when {@code resolve} has {@link #RESOLVE_BENEATH}. Returns the new descriptor.
     */
    public int openat2(int dirfd, String path, int flags, int mode, long resolve) throws ErrnoException {
        long fd;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment how = call.allocate(24, 8); // struct open_how { u64 flags, mode, resolve }
            how.set(JAVA_LONG, 0, flags & 0xffffffffL);
            how.set(JAVA_LONG, 8, mode);
            how.set(JAVA_LONG, 16, resolve);
            try {
                fd = (long) SYSCALL4.invokeExact(
                        callState,
                        SYS_OPENAT2,
                        (long) dirfd,
                        call.allocateFrom(path).address(),
                        how.address(),
                        24L);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        if (fd < 0) {
            throw new ErrnoException("openat2(" + path + ")", errno());
        }
        return (int) fd;
    }

    /**
     * An idmapped copy of the mount at {@code source}, attached at {@code target}: files show the
     * ids the user namespace behind {@code usernsFd} maps theirs to, and ids written through it
     * are mapped back ({@code open_tree(CLONE)}, {@code mount_setattr(MOUNT_ATTR_IDMAP)}, {@code
     * move_mount}). The file system must allow idmapped mounts; the source stays as it is.
     */
    public void idmappedMount(String source, String target, int usernsFd) throws ErrnoException {
        long tree;
        try (Arena call = Arena.ofConfined()) {
            try {
                tree = (long) SYSCALL4.invokeExact(
                        callState,
                        SYS_OPEN_TREE,
                        (long) AT_FDCWD,
                        call.allocateFrom(source).address(),
                        OPEN_TREE_CLONE | O_CLOEXEC,
                        0L);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (tree < 0) {
                throw new ErrnoException("open_tree(" + source + ")", errno());
            }
            try {
                // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }
                MemorySegment attr = call.allocate(32, 8);
                attr.set(JAVA_LONG, 0, MOUNT_ATTR_IDMAP);
                attr.set(JAVA_LONG, 24, usernsFd);
                long rc;
                try {
                    rc = (long) SYSCALL5.invokeExact(
                            callState,
                            SYS_MOUNT_SETATTR,
                            tree,
                            call.allocateFrom("").address(),
                            (long) AT_EMPTY_PATH,
                            attr.address(),
                            32L);
                } catch (Throwable t) {
                    throw rethrow(t);
                }
                if (rc < 0) {
                    throw new ErrnoException("mount_setattr(" + source + ", idmap)", errno());
                }
                try {
                    rc = (long) SYSCALL5.invokeExact(
                            callState,
                            SYS_MOVE_MOUNT,
                            tree,
                            call.allocateFrom("").address(),
                            (long) AT_FDCWD,
                            call.allocateFrom(target).address(),
                            MOVE_MOUNT_F_EMPTY_PATH);
                } catch (Throwable t) {
                    throw rethrow(t);
                }
                if (rc < 0) {
                    throw new ErrnoException("move_mount(" + target + ")", errno());
                }
            } finally {
                close((int) tree);
            }
        }
    }

    /** {@code openat(dirfd, name, flags, mode)}; returns the new descriptor. */
    public int openat(int dirfd, String name, int flags, int mode) throws ErrnoException {
        int fd;
        try (Arena call = Arena.ofConfined()) {
            try {
                fd = (int) OPENAT.invokeExact(callState, dirfd, call.allocateFrom(name), flags, mode);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        if (fd < 0) {
            throw new ErrnoException("openat(" + name + ")", errno());
        }
        return fd;
    }

    public void mkdirat(int dirfd, String name, int mode) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) MKDIRAT.invokeExact(callState, dirfd, call.allocateFrom(name), mode);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "mkdirat", name);
    }

    /** {@code mknodat(dirfd, name, mode, makedev(major, minor))}. */
    public void mknodat(int dirfd, String name, int mode, long major, long minor) throws ErrnoException {
        // glibc's makedev: the 12 low bits of major at 8, the 8 low bits of minor at 0, the rest above
        long dev = ((major & 0xfffL) << 8) | ((major & ~0xfffL) << 32) | (minor & 0xffL) | ((minor & ~0xffL) << 12);
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) MKNODAT.invokeExact(callState, dirfd, call.allocateFrom(name), mode, dev);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "mknodat", name);
    }

    public void symlinkat(String target, int dirfd, String name) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) SYMLINKAT.invokeExact(callState, call.allocateFrom(target), dirfd, call.allocateFrom(name));
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "symlinkat", name);
    }

    /** {@code linkat(olddirfd, oldname, newdirfd, newname, 0)}: never follows a symlink. */
    public void linkat(int olddirfd, String oldname, int newdirfd, String newname) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) LINKAT.invokeExact(
                        callState, olddirfd, call.allocateFrom(oldname), newdirfd, call.allocateFrom(newname), 0);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "linkat", newname);
    }

    public void unlinkat(int dirfd, String name, int flags) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) UNLINKAT.invokeExact(callState, dirfd, call.allocateFrom(name), flags);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "unlinkat", name);
    }

    /** {@code fchownat}; an empty name with {@code AT_EMPTY_PATH} is not used: pass a name. */
    public void fchownat(int dirfd, String name, long uid, long gid, int flags) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) FCHOWNAT.invokeExact(callState, dirfd, call.allocateFrom(name), (int) uid, (int) gid, flags);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "fchownat", name);
    }

    /** {@code fchmodat(dirfd, name, mode, 0)}: the mode bits include setuid, setgid and sticky. */
    public void fchmodat(int dirfd, String name, int mode) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            try {
                rc = (int) FCHMODAT.invokeExact(callState, dirfd, call.allocateFrom(name), mode, 0);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "fchmodat", name);
    }

    /** {@code lsetxattr(path, name, value)}: sets an attribute of {@code path} itself, not of a symlink's target. */
    public void lsetxattr(String path, String name, byte[] value) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment v = call.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, value.length);
            try {
                rc = (int) LSETXATTR.invokeExact(
                        callState, call.allocateFrom(path), call.allocateFrom(name), v, (long) value.length, 0);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "lsetxattr " + name, path);
    }

    /** {@code utimensat(dirfd, name, {atime, mtime}, flags)} with both times set to {@code seconds.nanos}. */
    public void utimensat(int dirfd, String name, long seconds, long nanos, int flags) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment times = call.allocate(32, 8);
            times.set(JAVA_LONG, 0, seconds);
            times.set(JAVA_LONG, 8, nanos);
            times.set(JAVA_LONG, 16, seconds);
            times.set(JAVA_LONG, 24, nanos);
            try {
                rc = (int) UTIMENSAT.invokeExact(callState, dirfd, call.allocateFrom(name), times, flags);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "utimensat", name);
    }

    /**
     * The {@code st_mode} of {@code name} in {@code dirfd} (not following a final symlink), or -1
     * when there is no such entry.
     */
    public int lstatMode(int dirfd, String name) throws ErrnoException {
        int rc;
        int mode;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment st = call.allocate(144, 8); // struct stat on x86_64; st_mode at offset 24
            try {
                rc = (int) FSTATAT.invokeExact(callState, dirfd, call.allocateFrom(name), st, AT_SYMLINK_NOFOLLOW);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            mode = st.get(JAVA_INT, 24);
        }
        if (rc < 0) {
            if (errno() == ENOENT) {
                return -1;
            }
            throw new ErrnoException("fstatat(" + name + ")", errno());
        }
        return mode;
    }

    /** {@code read(fd, buffer, length)}: bytes read, 0 at end of file; retried on EINTR. */
    public long read(int fd, MemorySegment buffer, long length) throws ErrnoException {
        while (true) {
            long n;
            try {
                n = (long) READ.invokeExact(callState, fd, buffer, length);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (n >= 0) {
                return n;
            }
            if (errno() != EINTR) {
                throw new ErrnoException("read", errno());
            }
        }
    }

    /** {@code inotify_init1(flags)}: a new inotify instance. */
    public int inotifyInit(int flags) throws ErrnoException {
        int fd;
        try {
            fd = (int) INOTIFY_INIT1.invokeExact(callState, flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check(fd, "inotify_init1", "");
        return fd;
    }

    /** {@code inotify_add_watch(fd, path, mask)}: the watch descriptor (the same one again for the same inode). */
    public int inotifyAddWatch(int fd, String path, int mask) throws ErrnoException {
        int wd;
        try (Arena call = Arena.ofConfined()) {
            try {
                wd = (int) INOTIFY_ADD_WATCH.invokeExact(callState, fd, call.allocateFrom(path), mask);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(wd, "inotify_add_watch", path);
        return wd;
    }

    /** {@code inotify_rm_watch(fd, wd)}; a watch already gone (its file deleted) is not an error. */
    public void inotifyRmWatch(int fd, int wd) throws ErrnoException {
        int rc;
        try {
            rc = (int) INOTIFY_RM_WATCH.invokeExact(callState, fd, wd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc < 0 && errno() != 22) {
            throw new ErrnoException("inotify_rm_watch", errno());
        }
    }

    /**
     * The bytes of disk {@code path} takes ({@code st_blocks * 512}, not following a final
     * symlink): less than its size where it has holes. -1 when there is no such file.
     */
    public long allocatedBytes(String path) throws ErrnoException {
        int rc;
        long blocks;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment st = call.allocate(144, 8); // struct stat on x86_64; st_blocks at offset 64
            try {
                rc = (int) FSTATAT.invokeExact(callState, AT_FDCWD, call.allocateFrom(path), st, AT_SYMLINK_NOFOLLOW);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            blocks = st.get(JAVA_LONG, 64);
        }
        if (rc < 0) {
            if (errno() == ENOENT) {
                return -1;
            }
            throw new ErrnoException("fstatat(" + path + ")", errno());
        }
        return blocks * 512;
    }

    /** The {@code st_mode} of what {@code fd} refers to (an {@link #O_PATH} descriptor too). */
    public int fstatMode(int fd) throws ErrnoException {
        int rc;
        int mode;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment st = call.allocate(144, 8); // struct stat on x86_64; st_mode at offset 24
            try {
                rc = (int) FSTATAT.invokeExact(callState, fd, call.allocateFrom(""), st, AT_EMPTY_PATH);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            mode = st.get(JAVA_INT, 24);
        }
        check(rc, "fstat", "fd " + fd);
        return mode;
    }

    /** Writes all of {@code length} bytes of {@code buffer} to {@code fd}. */
    public void writeFully(int fd, MemorySegment buffer, long length) throws ErrnoException {
        long off = 0;
        while (off < length) {
            long n;
            try {
                n = (long) WRITE.invokeExact(callState, fd, buffer.asSlice(off), length - off);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (n < 0) {
                if (errno() == EINTR) {
                    continue;
                }
                throw new ErrnoException("write", errno());
            }
            off += n;
        }
    }

    /** {@code futimens(fd, {mtime, mtime})}: sets both access and modification time. */
    public void futimens(int fd, long epochSecond, int nanos) throws ErrnoException {
        int rc;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment times = call.allocate(32, 8); // struct timespec[2] { time_t tv_sec; long tv_nsec; }
            for (int i = 0; i < 2; i++) {
                times.set(JAVA_LONG, i * 16L, epochSecond);
                times.set(JAVA_LONG, i * 16L + 8, nanos);
            }
            try {
                rc = (int) FUTIMENS.invokeExact(callState, fd, times);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
        check(rc, "futimens", "fd " + fd);
    }

    private void check(int rc, String call, String name) throws ErrnoException {
        if (rc < 0) {
            throw new ErrnoException(call + "(" + name + ")", errno());
        }
    }

    /** Frees the captured-state buffer. */
    @Override
    public void close() {
        arena.close();
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("unexpected checked exception from a downcall", t);
    }

    private static final Map<Integer, String> ERRNO_NAMES = Map.ofEntries(
            Map.entry(1, "EPERM"),
            Map.entry(2, "ENOENT"),
            Map.entry(4, "EINTR"),
            Map.entry(5, "EIO"),
            Map.entry(6, "ENXIO"),
            Map.entry(9, "EBADF"),
            Map.entry(11, "EAGAIN"),
            Map.entry(12, "ENOMEM"),
            Map.entry(13, "EACCES"),
            Map.entry(14, "EFAULT"),
            Map.entry(16, "EBUSY"),
            Map.entry(17, "EEXIST"),
            Map.entry(18, "EXDEV"),
            Map.entry(19, "ENODEV"),
            Map.entry(20, "ENOTDIR"),
            Map.entry(22, "EINVAL"),
            Map.entry(24, "EMFILE"),
            Map.entry(25, "ENOTTY"),
            Map.entry(21, "EISDIR"),
            Map.entry(36, "ENAMETOOLONG"),
            Map.entry(38, "ENOSYS"),
            Map.entry(39, "ENOTEMPTY"),
            Map.entry(40, "ELOOP"),
            Map.entry(95, "EOPNOTSUPP"));

    /** {@code ENOENT (No such file or directory)}-style text for an errno value. */
    public static String describeErrno(int errno) {
        String name = ERRNO_NAMES.getOrDefault(errno, "errno " + errno);
        String text;
        try {
            MemorySegment msg = (MemorySegment) STRERROR.invokeExact(errno);
            text = msg.equals(MemorySegment.NULL) ? "?" : msg.reinterpret(1024).getString(0);
        } catch (Throwable t) {
            text = "?";
        }
        return name + " (" + text + ")";
    }

    /** A failed call, with the {@code errno} it left behind. */
    public static final class ErrnoException extends Exception {
        private static final long serialVersionUID = 1L;

        private final int errno;
        private final String detail;

        public ErrnoException(String call, int errno) {
            this(errno, call + " failed: " + describeErrno(errno));
        }

        private ErrnoException(int errno, String detail) {
            super(detail);
            this.errno = errno;
            this.detail = detail;
        }

        /** Same as the message, but never null: {@code ioctl(KVM_RUN) failed: EFAULT (Bad address)}. */
        public String detail() {
            return detail;
        }

        public int errno() {
            return errno;
        }
    }
}
