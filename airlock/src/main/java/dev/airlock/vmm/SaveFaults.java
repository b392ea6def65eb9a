package dev.airlock.vmm;

import dev.airlock.host.LinuxSyscalls;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * The pages a save faults into a running VMM, handed back afterwards. QEMU reads every page of
 * guest RAM to save it (a zero page must be seen to be skipped); where RAM is a template's file
 * mapped privately, each page the guest never touched is then mapped into the VMM from the page
 * cache, and the VMM grows by its whole RAM (536 MiB PSS for a 512 MiB guest after a fork). Before
 * the save this notes which pages of the mapping are resident ({@code /proc/PID/pagemap}); after
 * it, the others are paged out ({@code process_madvise(MADV_PAGEOUT)}), which drops clean file
 * pages only this VMM maps and leaves the guest's own (anonymous) pages alone.
 */
final class SaveFaults {
    private static final long PAGE = 4096;
    private static final long PRESENT = 1L << 63;

    private record Mapping(long start, long end, BitSet resident) {}

    private final long pid;
    private final List<Mapping> mappings;

    private SaveFaults(long pid, List<Mapping> mappings) {
        this.pid = pid;
        this.mappings = mappings;
    }

    /**
     * Notes the residency of {@code pid}'s guest RAM where it is a file's mapping: a mapping of a
     * file exactly {@code ramBytes} long (the memory backend; a VM found again by the daemon does
     * not say which file it maps). None: nothing to do later.
     */
    static SaveFaults before(long pid, long ramBytes) {
        List<Mapping> found = new ArrayList<>();
        try (FileChannel pagemap =
                FileChannel.open(Path.of("/proc", Long.toString(pid), "pagemap"), StandardOpenOption.READ)) {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "maps"))) {
                String[] f = line.split("\\s+", 6);
                if (f.length < 6 || !f[5].startsWith("/")) {
                    continue;
                }
                int dash = f[0].indexOf('-');
                long start = Long.parseUnsignedLong(f[0].substring(0, dash), 16);
                long end = Long.parseUnsignedLong(f[0].substring(dash + 1), 16);
                if (end - start == ramBytes) {
                    found.add(new Mapping(start, end, resident(pagemap, start, end)));
                }
            }
        } catch (IOException | RuntimeException e) {
            // The VMM is gone, or this kernel hides its maps: nothing can be handed back.
            return new SaveFaults(pid, List.of());
        }
        return new SaveFaults(pid, found);
    }

    private static BitSet resident(FileChannel pagemap, long start, long end) throws IOException {
        int pages = (int) ((end - start) / PAGE);
        BitSet resident = new BitSet(pages);
        ByteBuffer buf = ByteBuffer.allocate(64 << 10).order(ByteOrder.nativeOrder());
        long pos = start / PAGE * 8;
        for (int page = 0; page < pages; ) {
            buf.clear().limit((int) Math.min(buf.capacity(), (long) (pages - page) * 8));
            int n = pagemap.read(buf, pos);
            if (n <= 0) {
                break;
            }
            pos += n;
            buf.flip();
            while (buf.remaining() >= 8) {
                if ((buf.getLong() & PRESENT) != 0) {
                    resident.set(page);
                }
                page++;
            }
        }
        return resident;
    }

    /** Pages out what was not resident before; returns the bytes advised (0 when nothing could be). */
    long release() {
        if (mappings.isEmpty()) {
            return 0;
        }
        List<long[]> ranges = new ArrayList<>();
        for (Mapping m : mappings) {
            int pages = (int) ((m.end() - m.start()) / PAGE);
            for (int from = m.resident().nextClearBit(0); from < pages; ) {
                int to = Math.min(
                        pages,
                        m.resident().nextSetBit(from) < 0 ? pages : m.resident().nextSetBit(from));
                ranges.add(new long[] {m.start() + from * PAGE, (to - from) * PAGE});
                from = m.resident().nextClearBit(to);
            }
        }
        long advised = 0;
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int pidfd = sys.pidfdOpen(pid);
            if (pidfd < 0) {
                return 0;
            }
            try {
                for (int i = 0; i < ranges.size(); i += LinuxSyscalls.IOV_MAX) {
                    List<long[]> batch = ranges.subList(i, Math.min(ranges.size(), i + LinuxSyscalls.IOV_MAX));
                    advised += sys.processMadvise(
                            pidfd,
                            batch.stream().mapToLong(r -> r[0]).toArray(),
                            batch.stream().mapToLong(r -> r[1]).toArray(),
                            LinuxSyscalls.MADV_PAGEOUT);
                }
            } finally {
                sys.close(pidfd);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            // An older kernel (no process_madvise) or a VMM that exited: the pages stay mapped
            // until it does, which costs memory, not correctness.
        }
        return advised;
    }
}
