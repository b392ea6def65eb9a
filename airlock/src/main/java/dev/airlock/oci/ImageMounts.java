package dev.airlock.oci;

import dev.airlock.host.Hashing;
import dev.airlock.host.LoopMount;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Read-only mounts of image files, one per image, shared by every container built on it. An
 * image is mounted at {@code <dir>/<image file name without extension>} on first use and stays
 * mounted for later containers; {@link #release} (on image removal) unmounts it once no overlay on
 * this host still uses it as its lower layer.
 * The mount table itself is the reference count, so a crashed daemon cannot leak or miscount
 * references. A file lock serialises processes that mount and unmount at the same time.
 */
public final class ImageMounts {
    private final Path dir;

    /** Between an image's mount point name and the ids of an idmapped view of it. */
    private static final String VIEW = "@ids-";

    public ImageMounts(Path dir) {
        this.dir = dir.toAbsolutePath().normalize();
    }

    public Path dir() {
        return dir;
    }

    /** The directory holding the image's files; a directory image is used as it is. */
    public Path acquire(Path image) {
        if (Files.isDirectory(image)) {
            return image;
        }
        Path target = mountPoint(image);
        locked(() -> mountImage(image, target));
        return target;
    }

    /**
     * The image's files as a container in the user namespace of {@code ids} must see them: an
     * idmapped view of the image's mount (of a directory image: of the directory), made once per
     * image and range and shared like the plain mount. Nothing is copied or chowned.
     */
    public Path acquire(Path image, ContainerIds ids) {
        boolean directory = Files.isDirectory(image);
        Path source = directory ? image : mountPoint(image);
        Path view = viewPoint(image, ids);
        locked(() -> {
            if (!directory) {
                mountImage(image, source);
            }
            if (!Mounts.isMountPoint(view)) {
                Files.createDirectories(view);
                ids.mountIdmapped(source, view);
            }
        });
        return view;
    }

    /**
     * Whether the kernel can show {@code image} idmapped: an erofs image or a directory on a
     * filesystem that allows it; not a directory on overlayfs (an OCI bundle's rootfs as podman
     * and containerd lay it out), where mount_setattr answers EINVAL.
     */
    public static boolean canIdmap(Path image) {
        if (!Files.isDirectory(image)) {
            return true;
        }
        try {
            return !Files.getFileStore(image).type().equals("overlay");
        } catch (IOException e) {
            return false;
        }
    }

    private static void mountImage(Path image, Path target) throws IOException {
        if (!Mounts.isMountPoint(target)) {
            Files.createDirectories(target);
            Mounts.mountLoop("erofs", image, target, LoopMount.MS_RDONLY | LoopMount.MS_NODEV | LoopMount.MS_NOSUID);
        }
    }

    private Path viewPoint(Path image, ContainerIds ids) {
        String base = Files.isDirectory(image)
                ? "dir-"
                        + Hashing.sha256(image.toAbsolutePath().normalize().toString())
                                .substring(0, 16)
                : mountPoint(image).getFileName().toString();
        return dir.resolve(base + VIEW + ids.uid() + "." + ids.gid());
    }

    /** Unmounts the idmapped views of {@code image} no overlay uses any more. */
    private void releaseViews(Path image) throws IOException {
        String prefix = (Files.isDirectory(image)
                        ? "dir-"
                                + Hashing.sha256(image.toAbsolutePath()
                                                .normalize()
                                                .toString())
                                        .substring(0, 16)
                        : mountPoint(image).getFileName().toString())
                + VIEW;
        for (Mounts.Entry e : Mounts.list()) {
            Path m = e.mountPoint();
            if (dir.equals(m.getParent()) && m.getFileName().toString().startsWith(prefix) && !inUse(m)) {
                Mounts.unmount(m);
                Files.deleteIfExists(m);
            }
        }
    }

    /** Unmounts the image if nothing uses it any more; returns whether it is now unmounted. */
    public boolean release(Path image) {
        if (Files.isDirectory(image)) {
            // nothing of its own to unmount; only the idmapped views made of it
            locked(() -> releaseViews(image));
            return false;
        }
        Path target = mountPoint(image);
        boolean[] done = {false};
        locked(() -> {
            releaseViews(image);
            if (!Mounts.isMountPoint(target)) {
                done[0] = true;
                return;
            }
            if (inUse(target) || hasViews(target)) {
                return;
            }
            Mounts.unmount(target);
            Files.deleteIfExists(target);
            done[0] = !Mounts.isMountPoint(target);
        });
        return done[0];
    }

    public Path mountPoint(Path image) {
        String name = image.getFileName().toString();
        int dot = name.indexOf('.');
        return dir.resolve(dot > 0 ? name.substring(0, dot) : name);
    }

    private boolean hasViews(Path target) {
        String prefix = target.getFileName() + VIEW;
        return Mounts.list().stream()
                .anyMatch(e -> dir.equals(e.mountPoint().getParent())
                        && e.mountPoint().getFileName().toString().startsWith(prefix));
    }

    static boolean inUse(Path lower) {
        String needle = "lowerdir=" + lower;
        for (Mounts.Entry e : Mounts.list()) {
            if (!e.type().equals("overlay")) {
                continue;
            }
            for (String opt : e.superOptions().split(",")) {
                if (opt.startsWith("lowerdir=")) {
                    for (String layer : opt.substring("lowerdir=".length()).split(":")) {
                        if (("lowerdir=" + layer).equals(needle)) {
                            return true;
                        }
                    }
                }
            }
        }
        return false;
    }

    private interface Locked {
        void run() throws IOException;
    }

    private void locked(Locked action) {
        // the JVM-wide monitor first: a second FileChannel.lock from this JVM would throw
        synchronized (ImageMounts.class) {
            try {
                Files.createDirectories(dir);
                try (FileChannel ch = FileChannel.open(
                                dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                        FileLock lock = ch.lock()) {
                    action.run();
                }
            } catch (IOException e) {
                throw new UncheckedIOException("image mounts in " + dir, e);
            }
        }
    }
}
