package dev.airlock.vmm.kvm;

import static dev.airlock.vmm.kvm.KvmIoctls.KVM_API_VERSION;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_CREATE_VCPU;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_CREATE_VM;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_FAIL_ENTRY;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_HLT;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_INTERNAL_ERROR;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_IO;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_IO_OUT;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_MMIO;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_EXIT_SHUTDOWN;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_GET_API_VERSION;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_GET_REGS;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_GET_SREGS;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_GET_VCPU_MMAP_SIZE;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_RUN;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_SET_REGS;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_SET_SREGS;
import static dev.airlock.vmm.kvm.KvmIoctls.KVM_SET_USER_MEMORY_REGION;

import dev.airlock.host.LinuxSyscalls;
import dev.airlock.host.LinuxSyscalls.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Checks that this host can really run a KVM guest, using only the Java FFM API.
 *
 * <p>The probe opens the KVM device, creates a VM with one page of memory at guest physical {@code
 * 0x1000} and one vCPU in real mode, and runs a few bytes of 16-bit code: {@code mov dx, 0x3f8; mov
 * al, 0x42; out dx, al; hlt}. It expects a {@code KVM_EXIT_IO} carrying that byte and then a {@code
 * KVM_EXIT_HLT}. It then times VM entry/exit round trips by running a loop of {@code out dx, al; jmp
 * back}, where each {@code KVM_RUN} comes back with one port write.
 *
 * <p>{@link #run()} never throws for a host that cannot do this: it returns {@link Unavailable} when
 * the device cannot be opened and {@link Failed} naming the stage that went wrong otherwise. Every
 * file descriptor and mapping it creates is released before it returns.
 */
public final class KvmProbe {
    /** Where Linux exposes KVM. */
    public static final Path DEFAULT_DEVICE = Path.of("/dev/kvm");

    /** Timed round trips by default. */
    public static final int DEFAULT_ITERATIONS = 10_000;

    private static final int WARMUP_ITERATIONS = 1_000;

    /** Guest physical address of the single page of guest memory (and of the first entry point). */
    static final long GUEST_PHYS = 0x1000;

    private static final long GUEST_MEMORY_SIZE = 0x1000;

    /** COM1's data register, the port the guest writes to. */
    static final int PORT = 0x3f8;

    /** The byte the guest writes. */
    static final int PORT_BYTE = 0x42;

    /** Offset of the timing loop inside the guest page (so its entry point is 0x1010). */
    private static final int LOOP_OFFSET = 0x10;

    /**
     * 16-bit real-mode code. At 0x1000: {@code BA F8 03} mov dx, 0x3f8; {@code B0 42} mov al, 0x42;
     * {@code EE} out dx, al; {@code F4} hlt. At 0x1010 the same two moves, then at 0x1015 {@code EE}
     * out dx, al and at 0x1016 {@code EB FD} jmp short -3, back to the out.
     */
    private static final byte[] OUT_THEN_HLT = HexFormat.of().parseHex("baf803b042eef4");

    private static final byte[] OUT_LOOP = HexFormat.of().parseHex("baf803b042eeebfd");

    private final Path device;
    private final int iterations;

    /**
     * A probe of the given device node.
     *
     * @param device the KVM device, normally {@link #DEFAULT_DEVICE}
     * @param iterations how many timed round trips to run, at least 1
     */
    public KvmProbe(Path device, int iterations) {
        if (iterations < 1) {
            throw new IllegalArgumentException("iterations must be positive: " + iterations);
        }
        this.device = device;
        this.iterations = iterations;
    }

    /** A probe of {@code device} with {@link #DEFAULT_ITERATIONS} timed round trips. */
    public static KvmProbe forDevice(Path device) {
        return new KvmProbe(device, DEFAULT_ITERATIONS);
    }

    /** A probe of {@code /dev/kvm} with {@link #DEFAULT_ITERATIONS} timed round trips. */
    public static KvmProbe atDefaultDevice() {
        return forDevice(DEFAULT_DEVICE);
    }

    public Path device() {
        return device;
    }

    public int iterations() {
        return iterations;
    }

    /** What the probe found. */
    public sealed interface Result permits Unavailable, Failed, Works {
        /** One line for {@code airlock doctor}. */
        String summary();
    }

    /** KVM cannot even be opened here (no device, no permission, or no native access). */
    public record Unavailable(String reason) implements Result {
        @Override
        public String summary() {
            return "KVM unavailable: " + reason;
        }
    }

    /**
     * KVM opened but the probe did not get through: {@code stage} names the step (usually the ioctl)
     * and {@code detail} gives the errno text or the unexpected exit (name, suberror, guest rip).
     */
    public record Failed(String stage, String detail) implements Result {
        @Override
        public String summary() {
            return "KVM failed at " + stage + ": " + detail;
        }
    }

    /**
     * The guest ran: it wrote {@code portByte} (always 0x42) to port 0x3f8 and halted, and {@code
     * iterations} timed {@code KVM_RUN} round trips (each one guest {@code out} exit) took the given
     * median, 95th percentile and mean wall-clock nanoseconds, including the FFM downcall.
     */
    public record Works(
            int apiVersion,
            int portByte,
            int iterations,
            long roundTripNanosMedian,
            long roundTripNanosP95,
            long roundTripNanosMean)
            implements Result {
        @Override
        public String summary() {
            return String.format(
                    Locale.ROOT,
                    "KVM works (API %d): real-mode guest wrote 0x%02x to port 0x3f8 and halted; "
                            + "VM exit round trip median %d ns, p95 %d ns, mean %d ns over %d runs",
                    apiVersion,
                    portByte,
                    roundTripNanosMedian,
                    roundTripNanosP95,
                    roundTripNanosMean,
                    iterations);
        }
    }

    /** Runs the probe. Never throws for a host that cannot run KVM guests. */
    public Result run() {
        LinuxSyscalls sys;
        try {
            sys = new LinuxSyscalls();
        } catch (IllegalCallerException e) {
            return new Unavailable(
                    "Java native access is disabled (run with --enable-native-access=ALL-UNNAMED): " + e.getMessage());
        } catch (LinkageError | RuntimeException e) {
            return new Unavailable("cannot bind libc through the FFM API: " + e);
        }
        try (sys) {
            return probe(sys);
        } catch (Stop stop) {
            return stop.result;
        } catch (IllegalCallerException e) {
            return new Unavailable(
                    "Java native access is disabled (run with --enable-native-access=ALL-UNNAMED): " + e.getMessage());
        } catch (RuntimeException e) {
            return new Failed("probe", "unexpected " + e);
        }
    }

    private Result probe(LinuxSyscalls sys) throws Stop {
        int kvmFd;
        try {
            kvmFd = sys.open(device.toString(), LinuxSyscalls.O_RDWR | LinuxSyscalls.O_CLOEXEC);
        } catch (ErrnoException e) {
            return new Unavailable("cannot open " + device + ": " + LinuxSyscalls.describeErrno(e.errno()));
        }
        try (Fd kvm = new Fd(sys, kvmFd);
                Arena arena = Arena.ofConfined()) {
            int api = call(
                    "KVM_GET_API_VERSION", () -> sys.ioctl(kvm.fd, KVM_GET_API_VERSION, 0L, "KVM_GET_API_VERSION"));
            if (api != KVM_API_VERSION) {
                return new Failed("KVM_GET_API_VERSION", "expected API version 12, got " + api);
            }
            try (Mapping memory = new Mapping(
                            sys,
                            map(
                                    sys,
                                    "mmap guest memory",
                                    GUEST_MEMORY_SIZE,
                                    LinuxSyscalls.MAP_PRIVATE
                                            | LinuxSyscalls.MAP_ANONYMOUS
                                            | LinuxSyscalls.MAP_NORESERVE,
                                    -1));
                    Fd vm = new Fd(
                            sys, call("KVM_CREATE_VM", () -> sys.ioctl(kvm.fd, KVM_CREATE_VM, 0L, "KVM_CREATE_VM")))) {
                MemorySegment.copy(OUT_THEN_HLT, 0, memory.segment, ValueLayout.JAVA_BYTE, 0, OUT_THEN_HLT.length);
                MemorySegment.copy(OUT_LOOP, 0, memory.segment, ValueLayout.JAVA_BYTE, LOOP_OFFSET, OUT_LOOP.length);

                MemorySegment region = arena.allocate(KvmIoctls.SIZEOF_KVM_USERSPACE_MEMORY_REGION, 8);
                region.set(ValueLayout.JAVA_INT, 0, 0); // slot
                region.set(ValueLayout.JAVA_INT, 4, 0); // flags
                region.set(ValueLayout.JAVA_LONG, 8, GUEST_PHYS);
                region.set(ValueLayout.JAVA_LONG, 16, GUEST_MEMORY_SIZE);
                region.set(ValueLayout.JAVA_LONG, 24, memory.segment.address());
                call(
                        "KVM_SET_USER_MEMORY_REGION",
                        () -> sys.ioctl(vm.fd, KVM_SET_USER_MEMORY_REGION, region, "KVM_SET_USER_MEMORY_REGION"));

                int runSize = call(
                        "KVM_GET_VCPU_MMAP_SIZE",
                        () -> sys.ioctl(kvm.fd, KVM_GET_VCPU_MMAP_SIZE, 0L, "KVM_GET_VCPU_MMAP_SIZE"));
                if (runSize < KvmIoctls.RUN_UNION + 256) {
                    return new Failed("KVM_GET_VCPU_MMAP_SIZE", "implausible kvm_run size " + runSize);
                }
                try (Fd vcpu = new Fd(
                                sys,
                                call(
                                        "KVM_CREATE_VCPU",
                                        () -> sys.ioctl(vm.fd, KVM_CREATE_VCPU, 0L, "KVM_CREATE_VCPU")));
                        Mapping run = new Mapping(
                                sys, map(sys, "mmap kvm_run", runSize, LinuxSyscalls.MAP_SHARED, vcpu.fd))) {
                    return runGuest(sys, arena, api, vcpu.fd, run.segment);
                }
            }
        }
    }

    private Result runGuest(LinuxSyscalls sys, Arena arena, int api, int vcpu, MemorySegment run) throws Stop {
        MemorySegment sregs = arena.allocate(KvmIoctls.SIZEOF_KVM_SREGS, 8);
        call("KVM_GET_SREGS", () -> sys.ioctl(vcpu, KVM_GET_SREGS, sregs, "KVM_GET_SREGS"));
        sregs.set(ValueLayout.JAVA_LONG, KvmIoctls.SREGS_CS_BASE, 0L);
        sregs.set(ValueLayout.JAVA_SHORT, KvmIoctls.SREGS_CS_SELECTOR, (short) 0);
        call("KVM_SET_SREGS", () -> sys.ioctl(vcpu, KVM_SET_SREGS, sregs, "KVM_SET_SREGS"));

        MemorySegment regs = arena.allocate(KvmIoctls.SIZEOF_KVM_REGS, 8);
        setEntry(sys, vcpu, regs, GUEST_PHYS);

        String stage = "KVM_RUN #1 (expect out 0x42 to port 0x3f8)";
        call(stage, () -> sys.ioctlRetrying(vcpu, KVM_RUN, "KVM_RUN"));
        int reason = exitReason(run);
        if (reason != KVM_EXIT_IO) {
            return new Failed(stage, describeExit(sys, vcpu, regs, run));
        }
        int direction = Byte.toUnsignedInt(run.get(ValueLayout.JAVA_BYTE, KvmIoctls.RUN_IO_DIRECTION));
        int size = Byte.toUnsignedInt(run.get(ValueLayout.JAVA_BYTE, KvmIoctls.RUN_IO_SIZE));
        int port = Short.toUnsignedInt(run.get(ValueLayout.JAVA_SHORT, KvmIoctls.RUN_IO_PORT));
        int count = run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_IO_COUNT);
        long dataOffset = run.get(ValueLayout.JAVA_LONG, KvmIoctls.RUN_IO_DATA_OFFSET);
        if (direction != KVM_EXIT_IO_OUT || size != 1 || port != PORT || count != 1) {
            return new Failed(stage, "unexpected " + describeExit(sys, vcpu, regs, run));
        }
        if (dataOffset < 0 || dataOffset >= run.byteSize()) {
            return new Failed(stage, "io.data_offset " + dataOffset + " is outside kvm_run (" + run.byteSize() + ")");
        }
        int written = Byte.toUnsignedInt(run.get(ValueLayout.JAVA_BYTE, dataOffset));
        if (written != PORT_BYTE) {
            return new Failed(stage, String.format(Locale.ROOT, "guest wrote 0x%02x, expected 0x42", written));
        }

        stage = "KVM_RUN #2 (expect hlt)";
        call(stage, () -> sys.ioctlRetrying(vcpu, KVM_RUN, "KVM_RUN"));
        if (exitReason(run) != KVM_EXIT_HLT) {
            return new Failed(stage, describeExit(sys, vcpu, regs, run));
        }

        setEntry(sys, vcpu, regs, GUEST_PHYS + LOOP_OFFSET);
        stage = "KVM_RUN timing loop";
        for (int i = 0; i < WARMUP_ITERATIONS; i++) {
            call(stage, () -> sys.ioctlRetrying(vcpu, KVM_RUN, "KVM_RUN"));
            if (exitReason(run) != KVM_EXIT_IO) {
                return new Failed(stage + " (warm-up " + i + ")", describeExit(sys, vcpu, regs, run));
            }
        }
        long[] samples = new long[iterations];
        for (int i = 0; i < iterations; i++) {
            long start = System.nanoTime();
            call(stage, () -> sys.ioctlRetrying(vcpu, KVM_RUN, "KVM_RUN"));
            long end = System.nanoTime();
            if (exitReason(run) != KVM_EXIT_IO) {
                return new Failed(stage + " (run " + i + ")", describeExit(sys, vcpu, regs, run));
            }
            samples[i] = end - start;
        }
        long sum = 0;
        for (long sample : samples) {
            sum += sample;
        }
        Arrays.sort(samples);
        long median = percentile(samples, 50);
        long p95 = percentile(samples, 95);
        return new Works(api, written, iterations, median, p95, sum / iterations);
    }

    /** Nearest-rank percentile of sorted samples. */
    static long percentile(long[] sorted, int percent) {
        int rank = (int) Math.ceil(percent / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    private static void setEntry(LinuxSyscalls sys, int vcpu, MemorySegment regs, long rip) throws Stop {
        regs.fill((byte) 0);
        regs.set(ValueLayout.JAVA_LONG, KvmIoctls.REGS_RIP, rip);
        regs.set(ValueLayout.JAVA_LONG, KvmIoctls.REGS_RFLAGS, 0x2L); // bit 1 is reserved and always set
        call("KVM_SET_REGS", () -> sys.ioctl(vcpu, KVM_SET_REGS, regs, "KVM_SET_REGS"));
    }

    private static int exitReason(MemorySegment run) {
        return run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_EXIT_REASON);
    }

    /** The exit in {@code run}, named as in the header, with its details and the guest's rip. */
    private static String describeExit(LinuxSyscalls sys, int vcpu, MemorySegment regs, MemorySegment run) {
        int reason = exitReason(run);
        StringBuilder text = new StringBuilder(KvmIoctls.exitName(reason));
        switch (reason) {
            case KVM_EXIT_IO ->
                text.append(String.format(
                        Locale.ROOT,
                        ": %s size %d port 0x%x count %d",
                        run.get(ValueLayout.JAVA_BYTE, KvmIoctls.RUN_IO_DIRECTION) == KVM_EXIT_IO_OUT ? "out" : "in",
                        Byte.toUnsignedInt(run.get(ValueLayout.JAVA_BYTE, KvmIoctls.RUN_IO_SIZE)),
                        Short.toUnsignedInt(run.get(ValueLayout.JAVA_SHORT, KvmIoctls.RUN_IO_PORT)),
                        run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_IO_COUNT)));
            case KVM_EXIT_MMIO ->
                text.append(String.format(
                        Locale.ROOT,
                        ": %s of %d bytes at guest physical 0x%x",
                        run.get(ValueLayout.JAVA_BYTE, KvmIoctls.RUN_MMIO_IS_WRITE) != 0 ? "write" : "read",
                        run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_MMIO_LEN),
                        run.get(ValueLayout.JAVA_LONG, KvmIoctls.RUN_MMIO_PHYS_ADDR)));
            case KVM_EXIT_FAIL_ENTRY ->
                text.append(String.format(
                        Locale.ROOT,
                        ": hardware_entry_failure_reason 0x%x on cpu %d",
                        run.get(ValueLayout.JAVA_LONG, KvmIoctls.RUN_FAIL_ENTRY_REASON),
                        run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_FAIL_ENTRY_CPU)));
            case KVM_EXIT_INTERNAL_ERROR -> {
                int suberror = run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_INTERNAL_SUBERROR);
                int ndata = run.get(ValueLayout.JAVA_INT, KvmIoctls.RUN_INTERNAL_NDATA);
                text.append(": suberror ").append(KvmIoctls.internalErrorName(suberror));
                int shown = Math.max(0, Math.min(ndata, 16));
                if (shown > 0) {
                    text.append(", data [");
                    for (int i = 0; i < shown; i++) {
                        text.append(i == 0 ? "" : ", ")
                                .append("0x")
                                .append(Long.toHexString(
                                        run.get(ValueLayout.JAVA_LONG, KvmIoctls.RUN_INTERNAL_DATA + 8L * i)));
                    }
                    text.append(']');
                }
            }
            case KVM_EXIT_SHUTDOWN -> text.append(": the guest triple-faulted or otherwise reset");
            default -> {}
        }
        try {
            sys.ioctl(vcpu, KVM_GET_REGS, regs, "KVM_GET_REGS");
            text.append(String.format(
                    Locale.ROOT, " (guest rip 0x%x)", regs.get(ValueLayout.JAVA_LONG, KvmIoctls.REGS_RIP)));
        } catch (ErrnoException e) {
            text.append(" (guest rip unknown: ").append(e.detail()).append(')');
        }
        return text.toString();
    }

    private static MemorySegment map(LinuxSyscalls sys, String stage, long length, int flags, int fd) throws Stop {
        try {
            return sys.mmap(length, LinuxSyscalls.PROT_READ | LinuxSyscalls.PROT_WRITE, flags, fd, 0, stage);
        } catch (ErrnoException e) {
            throw new Stop(new Failed(stage, e.detail()));
        }
    }

    @FunctionalInterface
    private interface Syscall {
        int call() throws ErrnoException;
    }

    private static int call(String stage, Syscall syscall) throws Stop {
        try {
            return syscall.call();
        } catch (ErrnoException e) {
            throw new Stop(new Failed(stage, e.detail()));
        }
    }

    /** Carries a failure out of the nested resource blocks; never escapes {@link #run()}. */
    private static final class Stop extends Exception {
        private static final long serialVersionUID = 1L;

        @SuppressWarnings("serial") // never serialized
        final Result result;

        Stop(Result result) {
            super(result.toString(), null, false, false);
            this.result = result;
        }
    }

    /** An owned file descriptor, closed exactly once. */
    private static final class Fd implements AutoCloseable {
        private final LinuxSyscalls sys;
        final int fd;

        Fd(LinuxSyscalls sys, int fd) {
            this.sys = sys;
            this.fd = fd;
        }

        @Override
        public void close() {
            try {
                sys.close(fd);
            } catch (ErrnoException e) {
                // Linux releases the descriptor even when close reports an error; nothing to retry.
            }
        }
    }

    /** An owned mmap'ed region, unmapped on close. */
    private static final class Mapping implements AutoCloseable {
        private final LinuxSyscalls sys;
        final MemorySegment segment;

        Mapping(LinuxSyscalls sys, MemorySegment segment) {
            this.sys = sys;
            this.segment = segment;
        }

        @Override
        public void close() {
            try {
                sys.munmap(segment);
            } catch (ErrnoException e) {
                // munmap of a region we mapped ourselves only fails on a bug; the process keeps the pages.
            }
        }
    }

    /** Prints the probe's result; {@code args[0]} may name another device, {@code args[1]} the run count. */
    public static void main(String[] args) {
        Path device = args.length > 0 ? Path.of(args[0]) : DEFAULT_DEVICE;
        int iterations = args.length > 1 ? Integer.parseInt(args[1]) : DEFAULT_ITERATIONS;
        Result result = new KvmProbe(device, iterations).run();
        System.out.println(result.summary());
        System.out.println(result);
    }
}
