package dev.airlock.image;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * The static guest agent ({@code airlock-init}) shipped inside the jar, materialised on disk by
 * content hash: as a binary (container mode bind-mounts it) and as the initramfs microVMs boot.
 * Images never contain the agent, so a new agent needs no image rebuild.
 */
public final class GuestAgent {
    private static final String RESOURCE = "/dev/airlock/guest/bin/airlock-init";

    private final byte[] binary;
    private final String sha256;
    private final Path dir;

    /**
     * The jar's agent and its hash, read once per process: they cannot change while it runs, and
     * every sandbox start asks for them (inflating and hashing the ~770 kB took 5-14 ms of a
     * gVisor start on this host under load).
     */
    private static volatile @Nullable Bundled bundled;

    private record Bundled(byte[] binary, String sha256) {}

    private GuestAgent(Bundled agent, Path cacheRoot) {
        this.binary = agent.binary();
        this.sha256 = agent.sha256();
        this.dir = cacheRoot.resolve(sha256.substring(0, 16));
    }

    public static GuestAgent bundled(AirlockDirs dirs) {
        Bundled b = bundled;
        if (b == null) {
            b = readBundled();
            bundled = b;
        }
        return new GuestAgent(b, dirs.guest());
    }

    private static Bundled readBundled() {
        try (InputStream in = GuestAgent.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new ImageException("this Airlock build has no guest agent (" + RESOURCE
                        + " missing from the jar); rebuild with ./mvnw package");
            }
            byte[] binary = in.readAllBytes();
            return new Bundled(binary, Hashing.sha256(binary));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public String sha256() {
        return sha256;
    }

    public Path binary() {
        return materialise("airlock-init", binary, "rwxr-xr-x");
    }

    public Path initramfs() {
        return materialise("initramfs.cpio", Initramfs.withInit(binary), "rw-------");
    }

    private Path materialise(String name, byte[] content, String permissions) {
        Path target = dir.resolve(name);
        try {
            if (Files.isRegularFile(target) && Files.size(target) == content.length) {
                return target;
            }
            AirlockDirs.ensureDir(dir);
            HostFiles.writeAtomically(target, content, permissions);
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target, e);
        }
    }
}
