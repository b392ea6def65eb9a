package dev.airlock.image;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.image.layer.ImageEssentials;
import dev.airlock.image.layer.LayerUnpacker;
import dev.airlock.image.oci.Digests;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;
import org.jspecify.annotations.Nullable;

/**
 * Turns the layers of a pulled or imported image into the store's read-only erofs image: unpacks
 * them in order into a private tree (checking each layer's uncompressed digest against the
 * config's {@code diff_ids} while it streams), adds what every Airlock image has, packs the tree
 * with mkfs.erofs and hands everything to the store in one commit. A layer that fails leaves
 * nothing in the store.
 */
public final class LayeredImages {
    /** Part of every layered recipe key: bump it when unpacking or the added essentials change. */
    public static final String VERSION = "1";

    private final ImageStore store;
    private final Progress progress;

    public LayeredImages(ImageStore store, Progress progress) {
        this.store = store;
        this.progress = progress;
    }

    /** A layer's blob on this host: in the content store, or a fresh download still in tmp. */
    public record LocalLayer(ImageSource.Layer layer, Path file) {}

    /**
     * Unpacks and stores the image. {@code newBlobs} are files in the store's tmp directory (verified
     * downloads) that move into the content store with the commit; {@code documents} (digest ->
     * bytes: the config, the manifest) are written there too.
     */
    public Image assemble(
            String name,
            ImageConfig config,
            ImageSource source,
            List<LocalLayer> layers,
            Map<String, Path> newBlobs,
            Map<String, byte[]> documents) {
        return assemble(
                name,
                null,
                config,
                source,
                layers,
                newBlobs,
                documents,
                ImageStore.layeredRecipe(source.configDigest()));
    }

    /**
     * Unpacks {@code layers} (already in the content store) over the tree of the image
     * {@code base} (null: an empty tree, {@code FROM scratch}) and stores the result under
     * {@code name} (null: unnamed) and {@code recipe}: a Dockerfile build's last step.
     */
    public Image assembleOnto(
            @Nullable Image base,
            @Nullable String name,
            ImageConfig config,
            ImageSource source,
            List<LocalLayer> layers,
            Map<String, byte[]> documents,
            String recipe) {
        return assemble(name, base, config, source, layers, Map.of(), documents, recipe);
    }

    private Image assemble(
            @Nullable String name,
            @Nullable Image base,
            ImageConfig config,
            ImageSource source,
            List<LocalLayer> layers,
            Map<String, Path> newBlobs,
            Map<String, byte[]> documents,
            String recipe) {
        String label = name != null ? name : "image";
        long start = System.nanoTime();
        Path work;
        try {
            work = Files.createTempDirectory(store.tempDir(), "unpack-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot make a work directory in " + store.tempDir(), e);
        }
        try {
            Path tree = work.resolve("rootfs");
            Files.createDirectory(
                    tree, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
            if (base != null) {
                copyTree(base, work.resolve("base"), tree);
            }
            List<String> notes;
            try (LayerUnpacker unpacker = new LayerUnpacker(tree)) {
                int i = 0;
                for (LocalLayer l : layers) {
                    i++;
                    unpack(unpacker, l, i, layers.size());
                }
                unpacker.finish();
                notes = ImageEssentials.add(unpacker);
            }
            for (String note : notes) {
                progress.step(label + ": note: " + note);
            }
            Path erofs = work.resolve("image.erofs");
            progress.step(label + ": packing erofs");
            // Per-file times are kept (Python's .pyc checks, make); the fixed uuid keeps the rest stable.
            HostCommand.Result mk = HostCommand.run(
                    List.of(
                            "mkfs.erofs",
                            "--quiet",
                            "--preserve-mtime",
                            "-U00000000-0000-0000-0000-000000000001",
                            erofs.toString(),
                            tree.toString()),
                    null,
                    null);
            if (!mk.ok()) {
                throw new ImageException("mkfs.erofs failed for image '" + label + "':\n" + mk.output());
            }
            // Gone before the commit: the commit's fsync would otherwise write the tree's dirty pages too.
            HostFiles.deleteTree(tree);
            Map<String, Path> blobs = new LinkedHashMap<>(newBlobs);
            for (Map.Entry<String, byte[]> d : documents.entrySet()) {
                Path f = work.resolve("doc-" + Digests.hex(d.getKey()));
                Files.write(f, d.getValue());
                blobs.put(d.getKey(), f);
            }
            long millis = (System.nanoTime() - start) / 1_000_000;
            Image image = store.commitLayered(name, recipe, erofs, millis, config, source, blobs);
            progress.step(label + ": stored as " + image.shortId() + ", " + (image.sizeBytes() >> 20) + " MiB");
            return image;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot assemble image " + label + " in " + work, e);
        } finally {
            HostFiles.deleteTree(work);
        }
    }

    /**
     * Copies the tree of a stored image into {@code tree}: its erofs file mounted read-only (the
     * image is one this store made, so the kernel reads a file mkfs.erofs wrote) and copied with
     * everything (owners, modes, setuid bits, hard links, devices, extended attributes), then
     * unmounted. Needs root, as container sandboxes do.
     */
    private static void copyTree(Image base, Path mountPoint, Path tree) throws IOException {
        Files.createDirectory(mountPoint);
        HostCommand.Result mount = HostCommand.run(
                List.of(
                        "mount",
                        "-t",
                        "erofs",
                        "-o",
                        "loop,ro,nodev,nosuid",
                        base.file().toString(),
                        mountPoint.toString()),
                null,
                null);
        if (!mount.ok()) {
            throw new ImageException("cannot mount image " + base.name() + " (" + base.shortId() + ") to build on it"
                    + " (building on an image needs root, as container sandboxes do): "
                    + mount.output().strip());
        }
        try {
            HostCommand.Result cp =
                    HostCommand.run(List.of("cp", "-a", "--", mountPoint + "/.", tree.toString()), null, null);
            if (!cp.ok()) {
                throw new ImageException("cannot copy the tree of image " + base.name() + ": "
                        + cp.output().strip());
            }
        } finally {
            HostCommand.Result umount = HostCommand.run(List.of("umount", mountPoint.toString()), null, null);
            if (!umount.ok()) {
                HostCommand.run(List.of("umount", "-l", mountPoint.toString()), null, null);
            }
        }
    }

    private void unpack(LayerUnpacker unpacker, LocalLayer l, int index, int count) throws IOException {
        String label = (index) + "/" + count + " " + Digests.shortForm(l.layer().digest());
        long t0 = System.nanoTime();
        MessageDigest sha = Hashing.newDigest();
        LayerUnpacker.Stats stats;
        // A download another pull (of an image sharing the layer) committed meanwhile is in the content store now.
        Path file =
                Files.exists(l.file()) ? l.file() : store.contentFile(l.layer().digest());
        try (InputStream raw = Files.newInputStream(file);
                InputStream tar = decompressed(new BufferedInputStream(raw, 1 << 16));
                DigestInputStream in = new HashingInput(tar, sha)) {
            stats = unpacker.apply(in, label);
            // the tar's end blocks and anything after them are part of the digest too
            in.transferTo(java.io.OutputStream.nullOutputStream());
        } catch (java.util.zip.ZipException | com.github.luben.zstd.ZstdIOException e) {
            throw new ImageException("layer " + label + " is corrupt: " + e.getMessage());
        } catch (dev.airlock.image.layer.TarReader.TarFormatException | java.io.EOFException e) {
            throw new ImageException("layer " + label + " is not a valid tar archive: " + e.getMessage());
        }
        String diffId = "sha256:" + HexFormat.of().formatHex(sha.digest());
        if (!diffId.equals(l.layer().diffId())) {
            throw new ImageException("layer " + label + " does not match the image config: its content is "
                    + Digests.shortForm(diffId) + ", the config says "
                    + Digests.shortForm(l.layer().diffId())
                    + "; the image is corrupt");
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        progress.step("layer " + label + ": unpacked " + stats.entries() + " entries, "
                + mib(stats.bytes()) + " in " + ms + " ms"
                + (stats.droppedXattrs() > 0
                        ? " (" + stats.droppedXattrs() + " extended attributes outside user.*,"
                                + " security.capability and ACLs left out)"
                        : ""));
    }

    /** Hashes every byte, the skipped ones too (a plain DigestInputStream's skip bypasses the digest). */
    private static final class HashingInput extends DigestInputStream {
        private final byte[] scratch = new byte[1 << 16];

        HashingInput(InputStream in, MessageDigest digest) {
            super(in, digest);
        }

        @Override
        public long skip(long n) throws IOException {
            long left = n;
            while (left > 0) {
                int r = read(scratch, 0, (int) Math.min(scratch.length, left));
                if (r < 0) {
                    break;
                }
                left -= r;
            }
            return n - left;
        }
    }

    /** The layer's tar, whatever its compression: told by its first bytes, not its media type. */
    static InputStream decompressed(BufferedInputStream in) throws IOException {
        in.mark(4);
        byte[] magic = in.readNBytes(4);
        in.reset();
        if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
            return new GZIPInputStream(in, 1 << 16);
        }
        if (magic.length == 4
                && (magic[0] & 0xff) == 0x28
                && (magic[1] & 0xff) == 0xb5
                && (magic[2] & 0xff) == 0x2f
                && (magic[3] & 0xff) == 0xfd) {
            return new BufferedInputStream(new ZstdInputStreamNoFinalizer(in), 1 << 16);
        }
        return in;
    }

    /** Sizes in progress lines: {@code 12.3 MiB}. */
    public static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / 1048576.0);
    }
}
