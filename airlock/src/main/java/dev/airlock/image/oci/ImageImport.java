package dev.airlock.image.oci;

import dev.airlock.host.Hashing;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageException;
import dev.airlock.image.ImageSource;
import dev.airlock.image.ImageStore;
import dev.airlock.image.LayeredImages;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * {@code airlock image import}: an OCI image layout (a directory with {@code oci-layout} and
 * {@code index.json}, or a tar of one, as {@code skopeo copy ... oci-archive:} and
 * {@code docker save} from Docker 25 on write) or a Docker archive ({@code manifest.json}, as
 * {@code docker save} and {@code podman save} write). Blobs are checked against their digests as
 * they are copied into the store; the rest is a pull's second half.
 */
public final class ImageImport {
    /** OCI's annotation for the tag of an index entry. */
    static final String REF_NAME = "org.opencontainers.image.ref.name";
    /** containerd's (and Docker 25's) annotation for the full image name of an index entry. */
    static final String IMAGE_NAME = "io.containerd.image.name";

    private final ImageStore store;
    private final Progress progress;

    public ImageImport(ImageStore store, Progress progress) {
        this.store = store;
        this.progress = progress;
    }

    /** {@code spec} is PATH or PATH:TAG (an existing PATH wins over a tag suffix). */
    public Image importFrom(String spec, @Nullable String name, Platform platform) {
        Path path = Path.of(spec);
        String tag = null;
        if (!Files.exists(path)) {
            int colon = spec.lastIndexOf(':');
            if (colon > 0 && Files.exists(Path.of(spec.substring(0, colon)))) {
                path = Path.of(spec.substring(0, colon));
                tag = spec.substring(colon + 1);
            } else {
                throw new ImageException("no such file or directory: " + spec);
            }
        }
        try (ImageStore.Lease lease = store.lease();
                ArchiveSource archive = ArchiveSource.open(path)) {
            if (archive.has("index.json") && archive.has("oci-layout")) {
                return fromLayout(archive, path, tag, name, platform);
            }
            if (archive.has("manifest.json")) {
                return fromDockerArchive(archive, path, tag, name, platform);
            }
            throw new ImageException(
                    path + " is neither an OCI image layout (oci-layout, index.json) nor a docker/podman"
                            + " save archive (manifest.json)");
        }
    }

    private Image fromLayout(
            ArchiveSource a, Path path, @Nullable String tag, @Nullable String name, Platform platform) {
        String what = path + ": index.json";
        JsonNode index = json(a.read("index.json", OciDocuments.MAX_MANIFEST_BYTES), what);
        List<JsonNode> entries = new ArrayList<>();
        index.path("manifests").forEach(entries::add);
        JsonNode chosen = null;
        List<String> tags = new ArrayList<>();
        for (JsonNode e : entries) {
            String refName = e.path("annotations").path(REF_NAME).asString("");
            String imageName = e.path("annotations").path(IMAGE_NAME).asString("");
            String shown = !refName.isEmpty() ? refName : imageName;
            if (!shown.isEmpty()) {
                tags.add(shown);
            }
            if (tag != null
                    && (tag.equals(refName)
                            || tag.equals(imageName)
                            || imageName.endsWith(":" + tag)
                            || refName.endsWith(":" + tag))) {
                chosen = e;
                break;
            }
        }
        if (tag == null) {
            if (entries.size() == 1) {
                chosen = entries.get(0);
            } else if (entries.isEmpty()) {
                throw new ImageException(path + " holds no image (its index.json lists none)");
            } else {
                throw new ImageException(path + " holds " + entries.size() + " images; pick one with " + path + ":TAG ("
                        + (tags.isEmpty() ? "they have no tags" : "tags: " + String.join(", ", tags)) + ")");
            }
        }
        if (chosen == null) {
            throw new ImageException("no tag '" + tag + "' in " + path
                    + (tags.isEmpty() ? " (its images have no tags)" : "; it has: " + String.join(", ", tags)));
        }
        Descriptor d = OciDocuments.index(("{\"manifests\":[" + chosen + "]}").getBytes(StandardCharsets.UTF_8), what)
                .manifests()
                .get(0);
        byte[] body = blob(a, d, OciDocuments.MAX_MANIFEST_BYTES, path);
        String type = OciDocuments.mediaType(body, d.mediaType(), path + ": manifest");
        if (MediaTypes.isIndex(type)) {
            d = OciDocuments.pick(OciDocuments.index(body, path + ": index"), platform, path.toString());
            body = blob(a, d, OciDocuments.MAX_MANIFEST_BYTES, path);
            type = OciDocuments.mediaType(body, d.mediaType(), path + ": manifest");
        }
        if (!MediaTypes.isManifest(type)) {
            throw new ImageException(path + ": the chosen entry is not an image manifest ('" + type + "')");
        }
        OciDocuments.Manifest m = OciDocuments.manifest(body, type, path + ": manifest");
        byte[] configBytes = blob(a, m.config(), OciDocuments.MAX_CONFIG_BYTES, path);
        String refName = chosen.path("annotations")
                .path(IMAGE_NAME)
                .asString(chosen.path("annotations").path(REF_NAME).asString(""));
        List<Blob> layers = new ArrayList<>();
        for (Descriptor l : m.layers()) {
            layers.add(new Blob(blobPath(l.digest()), l.mediaType(), l.digest()));
        }
        return finish(
                a,
                path,
                name,
                defaultName(path, refName, tag),
                platform,
                "sha256:" + Hashing.sha256(body),
                body,
                m.config().digest(),
                configBytes,
                layers);
    }

    private Image fromDockerArchive(
            ArchiveSource a, Path path, @Nullable String tag, @Nullable String name, Platform platform) {
        String what = path + ": manifest.json";
        JsonNode list = OciDocuments.JSON.readTree(a.read("manifest.json", OciDocuments.MAX_MANIFEST_BYTES));
        if (!list.isArray() || list.isEmpty()) {
            throw new ImageException(what + " lists no image");
        }
        JsonNode chosen = null;
        List<String> tags = new ArrayList<>();
        for (JsonNode e : list) {
            for (JsonNode t : e.path("RepoTags")) {
                String repoTag = t.asString("");
                tags.add(repoTag);
                if (tag != null && matchesTag(repoTag, tag)) {
                    chosen = e;
                }
            }
        }
        if (tag == null) {
            if (list.size() > 1) {
                throw new ImageException(path + " holds " + list.size() + " images; pick one with " + path
                        + ":TAG (tags: " + String.join(", ", tags) + ")");
            }
            chosen = list.get(0);
        }
        if (chosen == null) {
            throw new ImageException("no tag '" + tag + "' in " + path + "; it has: " + String.join(", ", tags));
        }
        String configName = chosen.path("Config").asString("");
        if (configName.isEmpty() || !a.has(configName)) {
            throw new ImageException(what + " names a config '" + configName + "' the archive does not have");
        }
        byte[] configBytes = a.read(configName, OciDocuments.MAX_CONFIG_BYTES);
        String configDigest = "sha256:" + Hashing.sha256(configBytes);
        List<Blob> layers = new ArrayList<>();
        for (JsonNode l : chosen.path("Layers")) {
            String layerName = l.asString("");
            if (!a.has(layerName)) {
                throw new ImageException(what + " names a layer '" + layerName + "' the archive does not have");
            }
            layers.add(new Blob(layerName, "", null));
        }
        String repoTag = "";
        for (JsonNode t : chosen.path("RepoTags")) {
            if (tag == null || matchesTag(t.asString(""), tag)) {
                repoTag = t.asString("");
                break;
            }
        }
        return finish(
                a,
                path,
                name,
                defaultName(path, repoTag, tag),
                platform,
                null,
                null,
                configDigest,
                configBytes,
                layers);
    }

    private static boolean matchesTag(String repoTag, String tag) {
        if (repoTag.equals(tag) || repoTag.endsWith(":" + tag)) {
            return true;
        }
        Optional<ImageReference> a = ImageReference.tryParse(repoTag);
        Optional<ImageReference> b = ImageReference.tryParse(tag);
        return a.isPresent()
                && b.isPresent()
                && a.get().familiar().equals(b.get().familiar());
    }

    /** A layer in the archive: its member name, media type, and digest when the archive states one. */
    private record Blob(
            String member, String mediaType, @Nullable String digest) {}

    private Image finish(
            ArchiveSource a,
            Path path,
            @Nullable String name,
            String defaultName,
            Platform platform,
            @Nullable String manifestDigest,
            byte @Nullable [] manifestBytes,
            String configDigest,
            byte[] configBytes,
            List<Blob> blobs) {
        String localName = ImageStore.storedName(name != null ? name : defaultName);
        OciDocuments.Config config = OciDocuments.config(configBytes, path + ": image config");
        ImagePull.checkPlatform(config, platform, path.toString());
        if (config.diffIds().size() != blobs.size()) {
            throw new ImageException(path + " is inconsistent: " + blobs.size() + " layers, but its config lists "
                    + config.diffIds().size());
        }
        progress.step("importing " + path + " as " + localName);
        Optional<Image> existing = store.findLayered(ImageStore.layeredRecipe(configDigest));
        if (existing.isPresent()) {
            Image named = store.tag(localName, existing.get());
            progress.step(localName + ": image is already in the store (" + named.shortId() + ")");
            return named;
        }
        Path work;
        try {
            work = Files.createTempDirectory(store.tempDir(), "import-");
        } catch (IOException e) {
            throw new ImageException("cannot make a work directory in " + store.tempDir() + ": " + e.getMessage());
        }
        try {
            Map<String, Path> newBlobs = new LinkedHashMap<>();
            List<LayeredImages.LocalLayer> locals = new ArrayList<>();
            List<ImageSource.Layer> layers = new ArrayList<>();
            int i = 0;
            for (Blob b : blobs) {
                i++;
                Path copy = work.resolve("layer-" + i);
                String digest;
                long size;
                try (InputStream in = a.open(b.member());
                        OutputStream out = Files.newOutputStream(copy)) {
                    MessageDigest sha = Hashing.newDigest();
                    byte[] buf = new byte[1 << 16];
                    size = 0;
                    for (int n; (n = in.read(buf)) > 0; ) {
                        sha.update(buf, 0, n);
                        out.write(buf, 0, n);
                        size += n;
                    }
                    digest = "sha256:" + HexFormat.of().formatHex(sha.digest());
                } catch (IOException e) {
                    throw new ImageException("cannot read layer " + b.member() + " of " + path + ": " + e.getMessage());
                }
                if (b.digest() != null && !b.digest().equals(digest)) {
                    throw new ImageException("layer " + Digests.shortForm(b.digest()) + " in " + path
                            + " is corrupt: its content hashes to " + Digests.shortForm(digest)
                            + "; nothing was stored");
                }
                String mediaType = !b.mediaType().isEmpty() ? b.mediaType() : sniffMediaType(copy);
                ImageSource.Layer l =
                        new ImageSource.Layer(digest, config.diffIds().get(i - 1), size, mediaType);
                layers.add(l);
                Path stored = store.contentFile(digest);
                if (Files.isRegularFile(stored)) {
                    Files.deleteIfExists(copy);
                    locals.add(new LayeredImages.LocalLayer(l, stored));
                } else {
                    Path previous = newBlobs.putIfAbsent(digest, copy);
                    locals.add(new LayeredImages.LocalLayer(l, previous != null ? previous : copy));
                }
                progress.step("layer " + i + "/" + blobs.size() + " " + Digests.shortForm(digest) + ": read "
                        + LayeredImages.mib(size));
            }
            byte[] manifest = manifestBytes;
            String mDigest = manifestDigest;
            if (manifest == null || mDigest == null) {
                manifest = synthesizedManifest(configDigest, configBytes.length, layers);
                mDigest = "sha256:" + Hashing.sha256(manifest);
            }
            ImageSource source = new ImageSource(
                    ImageSource.IMPORT,
                    path.toAbsolutePath().toString(),
                    mDigest,
                    configDigest,
                    config.platform().toString(),
                    layers);
            Map<String, byte[]> documents = new LinkedHashMap<>();
            documents.put(configDigest, configBytes);
            documents.put(mDigest, manifest);
            return new LayeredImages(store, progress)
                    .assemble(localName, config.config(), source, locals, newBlobs, documents);
        } catch (IOException e) {
            throw new ImageException("cannot import " + path + ": " + e.getMessage());
        } finally {
            dev.airlock.host.HostFiles.deleteTree(work);
        }
    }

    /** A Docker archive has no manifest: the OCI manifest that describes the same image, for the store. */
    private static byte[] synthesizedManifest(String configDigest, long configSize, List<ImageSource.Layer> layers) {
        ObjectNode m = OciDocuments.JSON.createObjectNode();
        m.put("schemaVersion", 2);
        m.put("mediaType", MediaTypes.OCI_MANIFEST);
        ObjectNode c = m.putObject("config");
        c.put("mediaType", MediaTypes.OCI_CONFIG);
        c.put("digest", configDigest);
        c.put("size", configSize);
        ArrayNode ls = m.putArray("layers");
        for (ImageSource.Layer l : layers) {
            ObjectNode o = ls.addObject();
            o.put("mediaType", l.mediaType());
            o.put("digest", l.digest());
            o.put("size", l.size());
        }
        return OciDocuments.JSON.writeValueAsBytes(m);
    }

    private static String sniffMediaType(Path file) throws IOException {
        byte[] magic;
        try (InputStream in = Files.newInputStream(file)) {
            magic = in.readNBytes(4);
        }
        if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
            return MediaTypes.OCI_LAYER_GZIP;
        }
        if (magic.length == 4 && (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5) {
            return MediaTypes.OCI_LAYER_ZSTD;
        }
        return MediaTypes.OCI_LAYER;
    }

    /** A blob of a layout, read whole and checked against its descriptor. */
    private static byte[] blob(ArchiveSource a, Descriptor d, int max, Path path) {
        String member = blobPath(d.digest());
        if (!a.has(member)) {
            throw new ImageException(path + " lacks the blob " + Digests.shortForm(d.digest()) + " its index names");
        }
        byte[] body = a.read(member, max);
        String digest = "sha256:" + Hashing.sha256(body);
        if (!digest.equals(d.digest())) {
            throw new ImageException("blob " + Digests.shortForm(d.digest()) + " in " + path
                    + " is corrupt: its content hashes to " + Digests.shortForm(digest) + "; nothing was stored");
        }
        return body;
    }

    private static String blobPath(String digest) {
        return "blobs/sha256/" + Digests.hex(digest);
    }

    /** The name an archive gives its image, else the file's name with the tag. */
    private static String defaultName(Path path, String refName, @Nullable String tag) {
        Optional<ImageReference> r = ImageReference.tryParse(refName);
        if (!refName.isEmpty() && r.isPresent() && refName.contains(":") && !refName.startsWith(":")) {
            return r.get().familiar();
        }
        String base = path.toAbsolutePath().normalize().getFileName() == null
                ? "imported"
                : path.toAbsolutePath().normalize().getFileName().toString();
        base = base.replaceAll("\\.(tar|oci|docker)$", "")
                .toLowerCase(Locale.ROOT)
                .replaceAll("[^a-z0-9._-]", "-");
        base = base.replaceAll("^[^a-z0-9]+", "");
        if (base.isEmpty()) {
            base = "imported";
        }
        String t = tag != null ? tag : !refName.isEmpty() && !refName.contains("/") ? refName : "latest";
        return ImageReference.tryParse(base + ":" + t)
                .map(ImageReference::familiar)
                .orElse(base);
    }

    private static JsonNode json(byte[] b, String what) {
        try {
            return OciDocuments.JSON.readTree(b);
        } catch (RuntimeException e) {
            throw new ImageException(what + " is not valid JSON");
        }
    }
}
