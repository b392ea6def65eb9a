package dev.airlock.host;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.security.MessageDigest;
import java.util.Optional;

/**
 * SHA-256 computed by the host's libcrypto (OpenSSL), as a {@link MessageDigest}. The JDK's own
 * SHA-256 is fast only once C2 compiles it; the CLI runs with C1 alone for a quick start, where
 * it hashes about 25 MiB/s, and an image pull hashes every byte twice (the compressed blob, the
 * unpacked tar). libcrypto uses the CPU's SHA instructions from the first byte. Used when
 * libcrypto.so.3 is present (every Debian system has it), else {@link Hashing} falls back to the
 * JDK's.
 */
final class NativeSha256 extends MessageDigest {
    private static final int CTX_BYTES = 128; // SHA256_CTX is 112 bytes on x86_64 and arm64
    private static final int CHUNK = 1 << 16;

    private static final Optional<Handles> HANDLES = load();

    private record Handles(MethodHandle init, MethodHandle update, MethodHandle finish) {}

    private final MemorySegment ctx;
    private final MemorySegment buffer;
    private final MemorySegment out;
    private final Handles h;

    private NativeSha256(Handles h) {
        super("SHA-256");
        this.h = h;
        Arena arena = Arena.ofAuto(); // freed with this object: the context holds no other resources
        this.ctx = arena.allocate(CTX_BYTES, 8);
        this.buffer = arena.allocate(CHUNK);
        this.out = arena.allocate(32);
        engineReset();
    }

    /** A native SHA-256, or empty when libcrypto cannot be loaded. */
    static Optional<MessageDigest> create() {
        return HANDLES.map(NativeSha256::new);
    }

    private static Optional<Handles> load() {
        try {
            SymbolLookup crypto = SymbolLookup.libraryLookup("libcrypto.so.3", Arena.global());
            Linker linker = Linker.nativeLinker();
            MethodHandle init = linker.downcallHandle(
                    crypto.find("SHA256_Init").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS));
            MethodHandle update = linker.downcallHandle(
                    crypto.find("SHA256_Update").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
            MethodHandle finish = linker.downcallHandle(
                    crypto.find("SHA256_Final").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
            return Optional.of(new Handles(init, update, finish));
        } catch (RuntimeException e) {
            return Optional.empty(); // no libcrypto here, or without these symbols
        }
    }

    @Override
    protected void engineUpdate(byte input) {
        engineUpdate(new byte[] {input}, 0, 1);
    }

    @Override
    protected void engineUpdate(byte[] input, int offset, int len) {
        int done = 0;
        while (done < len) {
            int n = Math.min(CHUNK, len - done);
            MemorySegment.copy(input, offset + done, buffer, JAVA_BYTE, 0, n);
            try {
                int ok = (int) h.update().invokeExact(ctx, buffer, (long) n);
                if (ok != 1) {
                    throw new IllegalStateException("SHA256_Update failed");
                }
            } catch (Throwable t) {
                throw rethrow(t);
            }
            done += n;
        }
    }

    @Override
    protected byte[] engineDigest() {
        try {
            int ok = (int) h.finish().invokeExact(out, ctx);
            if (ok != 1) {
                throw new IllegalStateException("SHA256_Final failed");
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        byte[] digest = out.toArray(JAVA_BYTE);
        engineReset();
        return digest;
    }

    @Override
    protected void engineReset() {
        try {
            int ok = (int) h.init().invokeExact(ctx);
            if (ok != 1) {
                throw new IllegalStateException("SHA256_Init failed");
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    protected int engineGetDigestLength() {
        return 32;
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }
}
