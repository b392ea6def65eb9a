package dev.airlock.vmm.kvm;

/**
 * KVM ioctl request numbers and the ABI facts (struct sizes, field offsets, exit reasons) that the
 * Java side needs, for x86_64 Linux.
 *
 * <p>Request numbers follow the generic Linux {@code _IOC(dir, type, nr, size)} encoding from
 * {@code asm-generic/ioctl.h}: bits 0-7 hold {@code nr}, bits 8-15 the {@code type} (0xAE for KVM),
 * bits 16-29 the argument struct size and bits 30-31 the direction ({@code _IOC_WRITE} = 1 means
 * userspace writes to the kernel, {@code _IOC_READ} = 2 means the kernel writes back). Sizes and
 * offsets below were checked against {@code /usr/include/linux/kvm.h} and {@code
 * /usr/include/x86_64-linux-gnu/asm/kvm.h} with a throwaway C program ({@code sizeof}/{@code
 * offsetof}).
 */
final class KvmIoctls {
    private KvmIoctls() {}

    static final int IOC_NONE = 0;
    static final int IOC_WRITE = 1;
    static final int IOC_READ = 2;

    private static final int IOC_NRBITS = 8;
    private static final int IOC_TYPEBITS = 8;
    private static final int IOC_SIZEBITS = 14;
    private static final int IOC_NRSHIFT = 0;
    private static final int IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS;
    private static final int IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS;
    private static final int IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS;

    /** The ioctl "type" (magic) byte shared by every KVM ioctl. */
    static final int KVMIO = 0xAE;

    /** {@code _IOC(dir, type, nr, size)}; returned as an unsigned 32-bit value in a long. */
    static long ioc(int dir, int type, int nr, int size) {
        if (dir < 0 || dir > 3) {
            throw new IllegalArgumentException("direction must be 0..3: " + dir);
        }
        if (type < 0 || type > 0xFF || nr < 0 || nr > 0xFF) {
            throw new IllegalArgumentException("type and nr must fit in a byte");
        }
        if (size < 0 || size >= (1 << IOC_SIZEBITS)) {
            throw new IllegalArgumentException("size must fit in 14 bits: " + size);
        }
        return ((long) dir << IOC_DIRSHIFT)
                | ((long) size << IOC_SIZESHIFT)
                | ((long) type << IOC_TYPESHIFT)
                | ((long) nr << IOC_NRSHIFT);
    }

    /** {@code _IO(type, nr)}: no argument struct. */
    static long io(int type, int nr) {
        return ioc(IOC_NONE, type, nr, 0);
    }

    /** {@code _IOR(type, nr, size)}: the kernel fills a struct of {@code size} bytes. */
    static long ior(int type, int nr, int size) {
        return ioc(IOC_READ, type, nr, size);
    }

    /** {@code _IOW(type, nr, size)}: the kernel reads a struct of {@code size} bytes. */
    static long iow(int type, int nr, int size) {
        return ioc(IOC_WRITE, type, nr, size);
    }

    /** {@code _IOWR(type, nr, size)}: both directions. */
    static long iowr(int type, int nr, int size) {
        return ioc(IOC_READ | IOC_WRITE, type, nr, size);
    }

    // ---- struct sizes (x86_64) ----

    /** {@code struct kvm_userspace_memory_region}: u32 slot, u32 flags, u64 gpa, u64 size, u64 uaddr. */
    static final int SIZEOF_KVM_USERSPACE_MEMORY_REGION = 32;

    /** {@code struct kvm_regs}: 16 general purpose registers, rip, rflags, all u64. */
    static final int SIZEOF_KVM_REGS = 144;

    /**
     * {@code struct kvm_sregs}: 8 {@code kvm_segment} (24 bytes each), 2 {@code kvm_dtable} (16 each),
     * cr0/cr2/cr3/cr4/cr8/efer/apic_base (u64 each) and a 256-bit interrupt bitmap.
     */
    static final int SIZEOF_KVM_SREGS = 312;

    // ---- system ioctls (on the /dev/kvm fd) ----

    /** {@code _IO(KVMIO, 0x00)} = 0xAE00; returns the API version, which must be 12. */
    static final long KVM_GET_API_VERSION = io(KVMIO, 0x00);

    /** {@code _IO(KVMIO, 0x01)} = 0xAE01; arg is the machine type (0); returns a VM fd. */
    static final long KVM_CREATE_VM = io(KVMIO, 0x01);

    /** {@code _IO(KVMIO, 0x04)} = 0xAE04; returns the size of the shared {@code kvm_run} mapping. */
    static final long KVM_GET_VCPU_MMAP_SIZE = io(KVMIO, 0x04);

    // ---- VM ioctls ----

    /** {@code _IO(KVMIO, 0x41)} = 0xAE41; arg is the vCPU id; returns a vCPU fd. */
    static final long KVM_CREATE_VCPU = io(KVMIO, 0x41);

    /** {@code _IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)} = 0x4020AE46. */
    static final long KVM_SET_USER_MEMORY_REGION = iow(KVMIO, 0x46, SIZEOF_KVM_USERSPACE_MEMORY_REGION);

    // ---- vCPU ioctls ----

    /** {@code _IO(KVMIO, 0x80)} = 0xAE80; enters the guest until the next exit to userspace. */
    static final long KVM_RUN = io(KVMIO, 0x80);

    /** {@code _IOR(KVMIO, 0x81, struct kvm_regs)} = 0x8090AE81. */
    static final long KVM_GET_REGS = ior(KVMIO, 0x81, SIZEOF_KVM_REGS);

    /** {@code _IOW(KVMIO, 0x82, struct kvm_regs)} = 0x4090AE82. */
    static final long KVM_SET_REGS = iow(KVMIO, 0x82, SIZEOF_KVM_REGS);

    /** {@code _IOR(KVMIO, 0x83, struct kvm_sregs)} = 0x8138AE83. */
    static final long KVM_GET_SREGS = ior(KVMIO, 0x83, SIZEOF_KVM_SREGS);

    /** {@code _IOW(KVMIO, 0x84, struct kvm_sregs)} = 0x4138AE84. */
    static final long KVM_SET_SREGS = iow(KVMIO, 0x84, SIZEOF_KVM_SREGS);

    /** The only stable KVM API version there has ever been. */
    static final int KVM_API_VERSION = 12;

    // ---- struct kvm_run layout (the mmap'ed area of a vCPU fd) ----

    /** {@code __u32 exit_reason}, after request_interrupt_window, immediate_exit, padding. */
    static final long RUN_EXIT_REASON = 8;

    /** Start of the exit-specific union. */
    static final long RUN_UNION = 32;

    /** {@code io.direction} (u8): {@link #KVM_EXIT_IO_IN} or {@link #KVM_EXIT_IO_OUT}. */
    static final long RUN_IO_DIRECTION = RUN_UNION;

    /** {@code io.size} (u8): access width in bytes. */
    static final long RUN_IO_SIZE = RUN_UNION + 1;

    /** {@code io.port} (u16). */
    static final long RUN_IO_PORT = RUN_UNION + 2;

    /** {@code io.count} (u32): number of repetitions (string instructions). */
    static final long RUN_IO_COUNT = RUN_UNION + 4;

    /** {@code io.data_offset} (u64): offset of the data bytes relative to the start of kvm_run. */
    static final long RUN_IO_DATA_OFFSET = RUN_UNION + 8;

    /** {@code fail_entry.hardware_entry_failure_reason} (u64). */
    static final long RUN_FAIL_ENTRY_REASON = RUN_UNION;

    /** {@code fail_entry.cpu} (u32). */
    static final long RUN_FAIL_ENTRY_CPU = RUN_UNION + 8;

    /** {@code internal.suberror} (u32). */
    static final long RUN_INTERNAL_SUBERROR = RUN_UNION;

    /** {@code internal.ndata} (u32). */
    static final long RUN_INTERNAL_NDATA = RUN_UNION + 4;

    /** {@code internal.data[16]} (u64 each). */
    static final long RUN_INTERNAL_DATA = RUN_UNION + 8;

    /** {@code mmio.phys_addr} (u64). */
    static final long RUN_MMIO_PHYS_ADDR = RUN_UNION;

    /** {@code mmio.len} (u32), after an 8-byte data array. */
    static final long RUN_MMIO_LEN = RUN_UNION + 16;

    /** {@code mmio.is_write} (u8). */
    static final long RUN_MMIO_IS_WRITE = RUN_UNION + 20;

    static final int KVM_EXIT_IO_IN = 0;
    static final int KVM_EXIT_IO_OUT = 1;

    // ---- struct kvm_regs / kvm_sregs offsets ----

    static final long REGS_RIP = 128;
    static final long REGS_RFLAGS = 136;

    /** {@code kvm_sregs.cs} is the first member; {@code kvm_segment.base} is at offset 0. */
    static final long SREGS_CS_BASE = 0;

    /** {@code kvm_segment.selector} (u16) sits after base (u64) and limit (u32). */
    static final long SREGS_CS_SELECTOR = 12;

    // ---- exit reasons ----

    static final int KVM_EXIT_UNKNOWN = 0;
    static final int KVM_EXIT_IO = 2;
    static final int KVM_EXIT_HLT = 5;
    static final int KVM_EXIT_MMIO = 6;
    static final int KVM_EXIT_SHUTDOWN = 8;
    static final int KVM_EXIT_FAIL_ENTRY = 9;
    static final int KVM_EXIT_INTERNAL_ERROR = 17;

    private static final String[] EXIT_NAMES = {
        "KVM_EXIT_UNKNOWN",
        "KVM_EXIT_EXCEPTION",
        "KVM_EXIT_IO",
        "KVM_EXIT_HYPERCALL",
        "KVM_EXIT_DEBUG",
        "KVM_EXIT_HLT",
        "KVM_EXIT_MMIO",
        "KVM_EXIT_IRQ_WINDOW_OPEN",
        "KVM_EXIT_SHUTDOWN",
        "KVM_EXIT_FAIL_ENTRY",
        "KVM_EXIT_INTR",
        "KVM_EXIT_SET_TPR",
        "KVM_EXIT_TPR_ACCESS",
        "KVM_EXIT_S390_SIEIC",
        "KVM_EXIT_S390_RESET",
        "KVM_EXIT_DCR",
        "KVM_EXIT_NMI",
        "KVM_EXIT_INTERNAL_ERROR",
        "KVM_EXIT_OSI",
        "KVM_EXIT_PAPR_HCALL",
        "KVM_EXIT_S390_UCONTROL",
        "KVM_EXIT_WATCHDOG",
        "KVM_EXIT_S390_TSCH",
        "KVM_EXIT_EPR",
        "KVM_EXIT_SYSTEM_EVENT",
        "KVM_EXIT_S390_STSI",
        "KVM_EXIT_IOAPIC_EOI",
        "KVM_EXIT_HYPERV",
        "KVM_EXIT_ARM_NISV",
        "KVM_EXIT_X86_RDMSR",
        "KVM_EXIT_X86_WRMSR",
        "KVM_EXIT_DIRTY_RING_FULL",
        "KVM_EXIT_AP_RESET_HOLD",
        "KVM_EXIT_X86_BUS_LOCK",
        "KVM_EXIT_XEN",
        "KVM_EXIT_RISCV_SBI",
        "KVM_EXIT_RISCV_CSR",
        "KVM_EXIT_NOTIFY",
    };

    /** The header's name for an exit reason, e.g. {@code KVM_EXIT_HLT (5)}. */
    static String exitName(int reason) {
        String name = reason >= 0 && reason < EXIT_NAMES.length ? EXIT_NAMES[reason] : "KVM_EXIT_?";
        return name + " (" + reason + ")";
    }

    private static final String[] INTERNAL_ERROR_NAMES = {
        "?",
        "KVM_INTERNAL_ERROR_EMULATION",
        "KVM_INTERNAL_ERROR_SIMUL_EX",
        "KVM_INTERNAL_ERROR_DELIVERY_EV",
        "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
    };

    /** The header's name for a {@code KVM_EXIT_INTERNAL_ERROR} suberror. */
    static String internalErrorName(int suberror) {
        String name = suberror > 0 && suberror < INTERNAL_ERROR_NAMES.length
                ? INTERNAL_ERROR_NAMES[suberror]
                : "KVM_INTERNAL_ERROR_?";
        return name + " (" + suberror + ")";
    }
}
