package dev.airlock.guest;

import java.security.SecureRandom;
import java.time.Instant;
import java.util.HexFormat;
import org.jspecify.annotations.Nullable;

/**
 * What makes one guest restored from a shared snapshot distinct from its siblings: host entropy
 * for the kernel's pool, the wall clock (frozen at the snapshot while the VM was saved), the
 * hostname and a machine-id (both optional: a resumed VM keeps its own). The clock is the host's at the moment the request is sent.
 */
public record GuestIdentity(
        byte[] entropy, @Nullable String hostname, @Nullable String machineId) {
    static final int ENTROPY = 1;
    static final int TIME_NS = 2;
    static final int HOSTNAME = 3;
    static final int MACHINE_ID = 4;

    private static final SecureRandom RANDOM = new SecureRandom();

    public GuestIdentity {
        entropy = entropy.clone();
        if (entropy.length == 0 || entropy.length > 512) {
            throw new IllegalArgumentException("entropy must be 1 to 512 bytes");
        }
        if (machineId != null && !machineId.matches("[0-9a-f]{32}")) {
            throw new IllegalArgumentException("a machine-id is 32 lowercase hex digits: " + machineId);
        }
    }

    /** A fresh identity for {@code hostname}: 64 random bytes and a new machine-id. */
    public static GuestIdentity fresh(String hostname) {
        byte[] entropy = new byte[64];
        RANDOM.nextBytes(entropy);
        byte[] id = new byte[16];
        RANDOM.nextBytes(id);
        return new GuestIdentity(entropy, hostname, HexFormat.of().formatHex(id));
    }

    @Override
    public byte[] entropy() {
        return entropy.clone();
    }

    byte[] toPayload() {
        // The clock goes last so the time taken to reseed does not make it late.
        Instant now = Instant.now();
        long nanos = Math.addExact(Math.multiplyExact(now.getEpochSecond(), 1_000_000_000L), now.getNano());
        Tlv.Writer w = new Tlv.Writer().bytes(ENTROPY, entropy);
        if (hostname != null) {
            w.string(HOSTNAME, hostname);
        }
        if (machineId != null) {
            w.string(MACHINE_ID, machineId);
        }
        return w.u64(TIME_NS, nanos).toPayload();
    }
}
