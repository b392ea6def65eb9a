package dev.airlock.vmm;

import java.util.Locale;

/** How guest code executes: on the CPU through KVM, or through QEMU's software CPU (TCG). */
public enum Accel {
    KVM,
    TCG;

    public static Accel parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "kvm" -> KVM;
            case "tcg" -> TCG;
            default -> throw new IllegalArgumentException("unknown accelerator '" + s + "': use kvm or tcg");
        };
    }

    public String flag() {
        return name().toLowerCase(Locale.ROOT);
    }
}
