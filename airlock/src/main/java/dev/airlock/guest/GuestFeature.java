package dev.airlock.guest;

import java.util.EnumSet;
import java.util.Set;

/** Capabilities the agent announces in its HELLO. */
public enum GuestFeature {
    EXEC(0),
    PTY(1),
    FILES(2),
    SHUTDOWN(3),
    /** Accepts IDENTITY (fresh entropy, clock, hostname, machine-id after a snapshot restore). */
    IDENTITY(4),
    /** ACCEPT/CONNECT byte streams to guest loopback sockets, and SET_ENV. */
    SOCKETS(5),
    /** MKDIR, MOVE and REMOVE. */
    FS_OPS(6),
    /** The built-ins {@code walk}, {@code pack} and {@code unpack} (EXEC with BUILTIN), and a default USER in SET_ENV. */
    BUILTINS(7);

    private final int bit;

    GuestFeature(int bit) {
        this.bit = bit;
    }

    public int bit() {
        return bit;
    }

    /** The known features in a bit set; bits of later versions are ignored. */
    static Set<GuestFeature> fromBits(long bits) {
        Set<GuestFeature> features = EnumSet.noneOf(GuestFeature.class);
        for (GuestFeature feature : values()) {
            if ((bits & (1L << feature.bit)) != 0) {
                features.add(feature);
            }
        }
        return java.util.Collections.unmodifiableSet(features);
    }
}
