package dev.airlock.testing;

import dev.airlock.host.LinuxSyscalls;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * What of a file the host has not written to disk yet, from the kernel's own count ({@code
 * cachestat(2)}, Linux 6.5): pages dirty or under writeback are what a host crash would lose.
 */
public final class PageCache {
    private static final long SYS_CACHESTAT = 451;
    private static final MethodHandle SYSCALL = Linker.nativeLinker()
            .downcallHandle(
                    Linker.nativeLinker().defaultLookup().find("syscall").orElseThrow(),
                    FunctionDescriptor.of(
                            ValueLayout.JAVA_LONG,
                            ValueLayout.JAVA_LONG,
                            ValueLayout.JAVA_INT,
                            ValueLayout.ADDRESS,
                            ValueLayout.ADDRESS,
                            ValueLayout.JAVA_INT),
                    Linker.Option.firstVariadicArg(1));

    private PageCache() {}

    /** Pages of {@code file} that are dirty or being written back: not on disk yet. */
    public static long unwritten(Path file) throws IOException {
        try (LinuxSyscalls sys = new LinuxSyscalls();
                Arena arena = Arena.ofConfined()) {
            int fd = sys.open(file.toString(), LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_CLOEXEC);
            try {
                MemorySegment range = arena.allocate(16); // {off, len} = {0, 0}: the whole file
                MemorySegment stat = arena.allocate(5 * 8); // nr_cache, nr_dirty, nr_writeback, ...
                long rc = (long) SYSCALL.invokeExact(SYS_CACHESTAT, fd, range, stat, 0);
                if (rc != 0) {
                    throw new IOException("cachestat(" + file + ") failed");
                }
                return stat.getAtIndex(ValueLayout.JAVA_LONG, 1) + stat.getAtIndex(ValueLayout.JAVA_LONG, 2);
            } finally {
                sys.close(fd);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new IOException(e.getMessage(), e);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
