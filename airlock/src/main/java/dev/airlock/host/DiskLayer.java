package dev.airlock.host;

import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * A sandbox's disk: a sparse ext4 file as large as its disk limit. A microVM's guest joins it to
 * the read-only image with overlayfs; an OCI sandbox's host overlay keeps its upper directory on
 * it, loop-mounted. Made empty, or (microVM) copied from a saved layer (a template's, a
 * workspace's setup) sharing blocks where the filesystem can.
 */
public final class DiskLayer {
    private DiskLayer() {}

    /** A layer made anew: empty, or a copy of a workspace's setup layer grown to the disk limit. */
    public static void fresh(Path file, long diskMiB, @Nullable Path template) {
        HostFiles.deleteTree(file);
        if (template == null) {
            make(file, diskMiB);
        } else {
            copy(template, file, diskMiB);
        }
    }

    /** A sparse file formatted as ext4. */
    public static void make(Path file, long diskMiB) {
        // The guest's disk: the owner's alone (a new RandomAccessFile would be 0644).
        HostFiles.ownerOnlyFile(file);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(diskMiB << 20);
        } catch (IOException e) {
            throw new SandboxException("cannot create the sandbox disk " + file + ": " + e.getMessage(), e);
        }
        HostCommand.Result r = HostCommand.run(
                List.of(
                        "mkfs.ext4",
                        "-q",
                        "-F",
                        "-m",
                        "0",
                        "-E",
                        "lazy_itable_init=1,lazy_journal_init=1",
                        file.toString()),
                null,
                null);
        if (!r.ok()) {
            throw SandboxException.failed(
                    "cannot format the sandbox disk " + file + ": " + r.output().strip());
        }
    }

    /** A saved layer, copied sparsely and grown to {@code diskMiB} when that is larger (0: as is). */
    public static void copy(Path template, Path file, long diskMiB) {
        try {
            HostFiles.copySparse(template, file);
        } catch (IOException e) {
            throw new SandboxException("cannot copy the disk layer " + template + ": " + e.getMessage(), e);
        }
        try {
            if (java.nio.file.Files.size(file) < (diskMiB << 20)) {
                try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
                    f.setLength(diskMiB << 20);
                }
                HostCommand.Result grow = HostCommand.run(List.of("resize2fs", "-f", file.toString()), null, null);
                if (!grow.ok()) {
                    throw SandboxException.failed("cannot grow the sandbox disk " + file + ": "
                            + grow.output().strip());
                }
            }
        } catch (IOException e) {
            throw new SandboxException("cannot size the sandbox disk " + file + ": " + e.getMessage(), e);
        }
    }

    /** The space the layer's data takes on the host (its holes are free), or 0 when it is missing. */
    public static long allocatedBytes(Path file) {
        HostCommand.Result du = HostCommand.run(List.of("stat", "-c", "%b %B", file.toString()), null, null);
        if (!du.ok()) {
            return 0;
        }
        String[] f = du.output().strip().split(" ");
        return Long.parseLong(f[0]) * Long.parseLong(f[1]);
    }
}
