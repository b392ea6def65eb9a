package dev.airlock.host;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Calls back, on a thread of its own, soon after a watched file is written to: inotify on each
 * file itself (not on its directory, where a busy neighbour such as a VM's disk would wake it for
 * every write). Events that arrive together are folded into one call per file. For logs a guest
 * fills, which must be capped within moments of growing, not at the next periodic check.
 */
public final class FileWriteWatch implements AutoCloseable {
    private static final int POLL_MILLIS = 500;
    private static final int BUFFER = 64 << 10;

    private final int fd;
    private final Consumer<Path> onWrite;
    private final Map<Integer, Path> byWatch = new ConcurrentHashMap<>();
    private final Map<Path, Integer> byPath = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile boolean closed;

    /** Starts the watch thread ({@code name}); {@code onWrite} runs on it and should be quick. */
    public FileWriteWatch(String name, Consumer<Path> onWrite) throws LinuxSyscalls.ErrnoException {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            this.fd = sys.inotifyInit(LinuxSyscalls.IN_CLOEXEC);
        }
        this.onWrite = onWrite;
        this.thread = Thread.ofPlatform().daemon().name(name).start(this::loop);
    }

    /** Watches {@code file} (which must exist) until {@link #unwatch}; repeating it is harmless. */
    public void watch(Path file) throws LinuxSyscalls.ErrnoException {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int wd = sys.inotifyAddWatch(fd, file.toString(), LinuxSyscalls.IN_MODIFY | LinuxSyscalls.IN_DONT_FOLLOW);
            byWatch.put(wd, file);
            byPath.put(file, wd);
        }
    }

    public void unwatch(Path file) {
        Integer wd = byPath.remove(file);
        if (wd == null) {
            return;
        }
        byWatch.remove(wd);
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            sys.inotifyRmWatch(fd, wd);
        } catch (LinuxSyscalls.ErrnoException e) {
            // The instance is closing, or the watch went with its file.
        }
    }

    /** The files watched now (tests). */
    public Set<Path> watched() {
        return Set.copyOf(byPath.keySet());
    }

    private void loop() {
        try (LinuxSyscalls sys = new LinuxSyscalls();
                Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(BUFFER, 8);
            while (!closed) {
                if (!sys.pollIn(fd, POLL_MILLIS) || closed) {
                    continue;
                }
                long n = sys.read(fd, buffer, BUFFER);
                Set<Path> written = new LinkedHashSet<>();
                // struct inotify_event { int wd; uint32 mask; uint32 cookie; uint32 len; char name[len]; }
                for (long off = 0; off + 16 <= n; ) {
                    int wd = buffer.get(ValueLayout.JAVA_INT, off);
                    int mask = buffer.get(ValueLayout.JAVA_INT, off + 4);
                    int len = buffer.get(ValueLayout.JAVA_INT, off + 12);
                    off += 16 + Integer.toUnsignedLong(len);
                    if ((mask & LinuxSyscalls.IN_Q_OVERFLOW) != 0) {
                        written.addAll(byPath.keySet());
                    } else if ((mask & LinuxSyscalls.IN_IGNORED) != 0) {
                        Path gone = byWatch.remove(wd);
                        if (gone != null) {
                            byPath.remove(gone, wd);
                        }
                    } else {
                        Path p = byWatch.get(wd);
                        if (p != null) {
                            written.add(p);
                        }
                    }
                }
                for (Path p : List.copyOf(written)) {
                    try {
                        onWrite.accept(p);
                    } catch (RuntimeException e) {
                        // One file's trouble must not end the watch of the others.
                    }
                }
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            if (!closed) {
                System.err.println("airlock: the file write watch stopped: " + e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            thread.join(2 * POLL_MILLIS + 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            sys.close(fd);
        } catch (LinuxSyscalls.ErrnoException e) {
            // Closing our own descriptor once.
        }
    }
}
