package dev.airlock.oci;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.DiskLayer;
import dev.airlock.host.HostFiles;
import dev.airlock.host.LoopMount;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The disk limit of an OCI sandbox (container or gVisor): its overlay's upper and work
 * directories live on a sparse ext4 file as large as its {@code --disk}, loop-mounted in its
 * container directory while it runs or its layer is read. A sandbox that fills it gets ENOSPC
 * inside, the host's filesystem is untouched: what a microVM's disk layer promises. Overlay on
 * the host's own filesystem has no quota of its own (no project quota on this host's root).
 *
 * <p>Sandboxes made before the disk existed keep their upper directory straight in the container
 * directory, without a limit; every path here says where a sandbox's is.
 */
final class LayerDisk {
    private static final Object MOUNTING = new Object();

    private LayerDisk() {}

    static Path file(Path containerDir) {
        return containerDir.resolve("disk.ext4");
    }

    static Path mountPoint(Path containerDir) {
        return containerDir.resolve("disk");
    }

    static boolean present(Path containerDir) {
        return Files.isRegularFile(file(containerDir));
    }

    /** The overlay's upper directory: on the disk, or (a sandbox without one) beside it. */
    static Path upper(Path containerDir) {
        return present(containerDir) ? mountPoint(containerDir).resolve("upper") : containerDir.resolve("upper");
    }

    static Path work(Path containerDir) {
        return present(containerDir) ? mountPoint(containerDir).resolve("work") : containerDir.resolve("work");
    }

    /**
     * A new, empty disk of {@code diskMiB} (sparse: it takes host space as it fills): a copy of
     * a blank one formatted once per size in {@code blanks}. Its ~2 MB of data copy in a few ms,
     * where mkfs took 25-90 ms of every create on this host.
     */
    static void make(Path containerDir, long diskMiB, Path blanks) {
        AirlockDirs.ensureOwnerOnlyDir(containerDir);
        Path blank = blanks.resolve(diskMiB + "m.ext4");
        try {
            if (!Files.isRegularFile(blank)) {
                AirlockDirs.ensureOwnerOnlyDir(blanks);
                // formatted aside and renamed: another process never copies a half-made one
                Path making =
                        blanks.resolve(diskMiB + "m." + ProcessHandle.current().pid() + "."
                                + Thread.currentThread().threadId() + ".making");
                DiskLayer.make(making, diskMiB);
                Files.move(making, blank, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            }
            HostFiles.copySparse(blank, file(containerDir));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot make the sandbox disk " + file(containerDir), e);
        }
    }

    /** Mounts the sandbox's disk unless it is mounted (or the sandbox has none). */
    static void mount(Path containerDir) {
        if (!present(containerDir)) {
            return;
        }
        Path target = mountPoint(containerDir);
        synchronized (MOUNTING) {
            if (Mounts.isMountPoint(target)) {
                return;
            }
            try {
                Files.createDirectories(target);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot make the mount point " + target, e);
            }
            // noatime: reads write nothing; nodev, nosuid: nothing on it means more on the host
            Mounts.mountLoop(
                    "ext4",
                    file(containerDir),
                    target,
                    LoopMount.MS_NOATIME | LoopMount.MS_NODEV | LoopMount.MS_NOSUID);
            // the disk's root (0755 from mkfs) holds the layers: the owner's alone, as above it
            AirlockDirs.ensureOwnerOnlyDir(target);
        }
    }

    /** Whether the disk is mounted now (false for a sandbox without one). */
    static boolean mounted(Path containerDir) {
        return present(containerDir) && Mounts.isMountPoint(mountPoint(containerDir));
    }
}
