package dev.airlock.guest;

import java.security.SecureRandom;
import java.time.Instant;
import java.util.HexFormat;
import org.jspecify.annotations.Nullable;

/**
 * What makes one guest restored from a shared snapshot distinct from its siblings: host entropy
 * for the kernel's pool, the wall clock (frozen at the snapshot while the VM was saved), the
 * hostname and a machine-id (both optional: a resumed VM keeps its own). The clock is the host's at the moment the request is sent.
 *
 * <p>A guest whose kernel is not its own ({@link #named}: gVisor, whose random device and clock
 * are the host's) gets only a hostname and machine-id: it can neither be reseeded nor set its clock.
 *
 * @param entropy bytes for the kernel's pool; empty: none sent
 * @param clock whether the guest's wall clock is set to the host's
 */
public record GuestIdentity(
        byte[] entropy, @Nullable String hostname, @Nullable String machineId, boolean clock) {
    static final int ENTROPY = 1;
    static final int TIME_NS = 2;
    static final int HOSTNAME = 3;
    static final int MACHINE_ID = 4;

    private static final SecureRandom RANDOM = new SecureRandom();

    public GuestIdentity {
        entropy = entropy.clone();
        if ((clock && entropy.length == 0) || entropy.length > 512) {
            throw new IllegalArgumentException("entropy must be 1 to 512 bytes");
        }
        if (machineId != null && !machineId.matches("[0-9a-f]{32}")) {
            throw new IllegalArgumentException("a machine-id is 32 lowercase hex digits: " + machineId);
        }
    }

    /** Entropy, the clock and optionally a name, for a restored VM. */
    public GuestIdentity(byte[] entropy, @Nullable String hostname, @Nullable String machineId) {
        this(entropy, hostname, machineId, true);
    }

    /** A fresh identity for {@code hostname}: 64 random bytes and a new machine-id. */
    public static GuestIdentity fresh(String hostname) {
        byte[] entropy = new byte[64];
        RANDOM.nextBytes(entropy);
        return new GuestIdentity(entropy, hostname, newMachineId());
    }

    /**
     * Entropy, the clock and a hostname, no machine-id: a restored VM that already has one of its
     * own (a pooled VM, given it when the pool filled), whose clock may have drifted since.
     */
    public static GuestIdentity renamed(String hostname) {
        byte[] entropy = new byte[64];
        RANDOM.nextBytes(entropy);
        return new GuestIdentity(entropy, hostname, null, true);
    }

    /** Only a name and a new machine-id, for a guest whose kernel gives it host entropy and time. */
    public static GuestIdentity named(String hostname) {
        return new GuestIdentity(new byte[0], hostname, newMachineId(), false);
    }

    /** Only a hostname: a guest that already has a machine-id of its own (a pooled gVisor sandbox). */
    public static GuestIdentity onlyHostname(String hostname) {
        return new GuestIdentity(new byte[0], hostname, null, false);
    }

    /**
     * Only a new machine-id: given to a pooled gVisor sandbox while it waits, so that the claim
     * has only its hostname to set (a file written in gVisor is several calls through its gofer).
     */
    public static GuestIdentity onlyNewMachineId() {
        return new GuestIdentity(new byte[0], null, newMachineId(), false);
    }

    private static String newMachineId() {
        byte[] id = new byte[16];
        RANDOM.nextBytes(id);
        return HexFormat.of().formatHex(id);
    }

    @Override
    public byte[] entropy() {
        return entropy.clone();
    }

    byte[] toPayload() {
        // The clock goes last so the time taken to reseed does not make it late.
        Instant now = Instant.now();
        long nanos = Math.addExact(Math.multiplyExact(now.getEpochSecond(), 1_000_000_000L), now.getNano());
        Tlv.Writer w = new Tlv.Writer();
        if (entropy.length > 0) {
            w.bytes(ENTROPY, entropy);
        }
        if (hostname != null) {
            w.string(HOSTNAME, hostname);
        }
        if (machineId != null) {
            w.string(MACHINE_ID, machineId);
        }
        if (clock) {
            w.u64(TIME_NS, nanos);
        }
        return w.toPayload();
    }
}
