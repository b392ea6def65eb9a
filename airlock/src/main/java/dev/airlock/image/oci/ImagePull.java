package dev.airlock.image.oci;

import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageException;
import dev.airlock.image.ImageSource;
import dev.airlock.image.ImageStore;
import dev.airlock.image.LayeredImages;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.jspecify.annotations.Nullable;

/**
 * {@code airlock image pull}: resolves a reference to one platform's manifest, downloads the
 * layers the store lacks (a few at a time, each checked against its digest as it streams,
 * resumed where an earlier pull stopped), and has them unpacked into the store's erofs image. An
 * image whose config the store already has is only (re)named.
 */
public final class ImagePull {
    private static final int PARALLEL_DOWNLOADS = 3;
    private static final long PROGRESS_EVERY_NANOS = 2_000_000_000L;

    private final ImageStore store;
    private final RegistryClient client;
    private final Progress progress;

    public ImagePull(ImageStore store, RegistryClient client, Progress progress) {
        this.store = store;
        this.client = client;
        this.progress = progress;
    }

    /** Pulls {@code ref} for {@code platform}, stored as {@code name} (default: the reference's short form). */
    public Image pull(ImageReference ref, Platform platform, @Nullable String name) {
        String localName = name != null ? ImageStore.storedName(name) : ref.familiar();
        try (ImageStore.Lease lease = store.lease()) {
            progress.step("pulling " + ref.familiar() + " (" + platform + ") from " + ref.registry());
            RegistryClient.Document doc = client.manifest(ref, ref.manifestReference());
            String what = "the manifest of " + ref.familiar();
            String type = OciDocuments.mediaType(doc.body(), doc.contentType(), what);
            if (MediaTypes.isIndex(type)) {
                Descriptor chosen = OciDocuments.pick(OciDocuments.index(doc.body(), what), platform, ref.familiar());
                doc = client.manifest(ref, chosen.digest());
                type = OciDocuments.mediaType(doc.body(), doc.contentType(), what);
            }
            if (type.equals(MediaTypes.DOCKER_SCHEMA1) || type.equals(MediaTypes.DOCKER_SCHEMA1_SIGNED)) {
                throw new ImageException(
                        ref.familiar() + " is a Docker schema 1 image, which registries stopped serving"
                                + " years ago; push it again with a current tool");
            }
            if (!MediaTypes.isManifest(type)) {
                throw new ImageException(ref.familiar() + " is not a container image (its manifest is '" + type + "')");
            }
            OciDocuments.Manifest manifest = OciDocuments.manifest(doc.body(), type, what);
            byte[] configBytes = client.smallBlob(ref, manifest.config(), OciDocuments.MAX_CONFIG_BYTES);
            OciDocuments.Config config = OciDocuments.config(configBytes, "the config of " + ref.familiar());
            checkPlatform(config, platform, ref.familiar());
            if (config.diffIds().size() != manifest.layers().size()) {
                throw new ImageException("the image " + ref.familiar() + " is inconsistent: its manifest has "
                        + manifest.layers().size() + " layers, its config "
                        + config.diffIds().size());
            }
            Optional<Image> existing =
                    store.findLayered(ImageStore.layeredRecipe(manifest.config().digest()));
            if (existing.isPresent()) {
                Image named = store.tag(localName, existing.get());
                progress.step(localName + ": image is up to date (" + named.shortId() + ")");
                return named;
            }
            Map<String, Path> downloaded = download(ref, manifest.layers());
            List<LayeredImages.LocalLayer> locals = new ArrayList<>();
            List<ImageSource.Layer> layers = new ArrayList<>();
            for (int i = 0; i < manifest.layers().size(); i++) {
                Descriptor d = manifest.layers().get(i);
                ImageSource.Layer l =
                        new ImageSource.Layer(d.digest(), config.diffIds().get(i), d.size(), d.mediaType());
                layers.add(l);
                Path file = downloaded.getOrDefault(d.digest(), store.contentFile(d.digest()));
                locals.add(new LayeredImages.LocalLayer(l, file));
            }
            ImageSource source = new ImageSource(
                    ImageSource.PULL,
                    ref.toString(),
                    doc.digest(),
                    manifest.config().digest(),
                    config.platform().toString(),
                    layers);
            Map<String, byte[]> documents = new LinkedHashMap<>();
            documents.put(manifest.config().digest(), configBytes);
            documents.put(doc.digest(), doc.body());
            return new LayeredImages(store, progress)
                    .assemble(localName, config.config(), source, locals, downloaded, documents);
        }
    }

    static void checkPlatform(OciDocuments.Config config, Platform platform, String what) {
        if (!platform.accepts(config.platform())) {
            throw new ImageException(what + " is an image for " + config.platform() + ", not " + platform
                    + "; a sandbox here runs " + Platform.LINUX_AMD64 + " images");
        }
    }

    /**
     * Downloads the layers the content store lacks into {@code tmp/downloads}; returns digest ->
     * verified file for those. A download another process is doing is waited for, not repeated.
     */
    private Map<String, Path> download(ImageReference ref, List<Descriptor> layers) {
        Path dir;
        try {
            dir = Files.createDirectories(store.tempDir().resolve("downloads"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Map<String, Path> out = new LinkedHashMap<>();
        List<Future<?>> jobs = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(PARALLEL_DOWNLOADS)) {
            int i = 0;
            for (Descriptor d : layers) {
                i++;
                String label = "layer " + i + "/" + layers.size() + " " + Digests.shortForm(d.digest());
                if (Files.isRegularFile(store.contentFile(d.digest()))) {
                    progress.step(label + ": already in the store");
                    continue;
                }
                Path done = dir.resolve(Digests.hex(d.digest()));
                if (out.containsKey(d.digest())) {
                    continue; // the same layer twice in one image
                }
                out.put(d.digest(), done);
                jobs.add(pool.submit(() -> downloadOne(ref, d, dir, done, label)));
            }
            for (Future<?> f : jobs) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    pool.shutdownNow();
                    if (e.getCause() instanceof RuntimeException r) {
                        throw r;
                    }
                    throw new IllegalStateException(e.getCause());
                } catch (InterruptedException e) {
                    pool.shutdownNow();
                    Thread.currentThread().interrupt();
                    throw new ImageException("interrupted while downloading " + ref.familiar());
                }
            }
        }
        return out;
    }

    private void downloadOne(ImageReference ref, Descriptor d, Path dir, Path done, String label) {
        String hex = Digests.hex(d.digest());
        try (HostFiles.Lock ignored = HostFiles.lock(dir.resolve(hex + ".lock"))) {
            if (Files.isRegularFile(done) && Files.size(done) == d.size()) {
                progress.step(label + ": downloaded earlier, " + LayeredImages.mib(d.size()));
                return;
            }
            Path partial = dir.resolve(hex + ".partial");
            long resumeAt = Files.isRegularFile(partial) ? Files.size(partial) : 0;
            if (resumeAt > 0 && resumeAt < d.size()) {
                progress.step(
                        label + ": resuming at " + LayeredImages.mib(resumeAt) + " of " + LayeredImages.mib(d.size()));
            }
            long start = System.nanoTime();
            long[] lastReport = {start};
            client.download(ref, d, partial, have -> {
                long now = System.nanoTime();
                if (now - lastReport[0] >= PROGRESS_EVERY_NANOS && have < d.size()) {
                    lastReport[0] = now;
                    progress.step(label + ": " + LayeredImages.mib(have) + " of " + LayeredImages.mib(d.size()));
                }
            });
            Files.move(partial, done, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            double secs = Math.max(1e-3, (System.nanoTime() - start) / 1e9);
            progress.step(label + ": downloaded " + LayeredImages.mib(d.size() - resumeAt) + " in "
                    + String.format("%.1f s", secs));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot store the download of " + label, e);
        }
    }
}
