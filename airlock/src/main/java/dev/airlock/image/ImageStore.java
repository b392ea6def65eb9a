package dev.airlock.image;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.image.oci.ImageReference;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.json.JsonMapper;

/**
 * Content-addressed store of read-only root filesystem images (erofs). Many sandboxes boot from
 * one image file at once; each gets its own writable layer, so nothing here is ever copied per
 * sandbox.
 *
 * <pre>
 *   images/blobs/&lt;sha256&gt;.erofs        the image bytes, named by their hash
 *   images/recipes/&lt;recipe&gt;.json       what was built from a spec (hash of the spec), or pulled
 *                                      or imported (hash of the OCI config digest)
 *   images/refs/&lt;name, URL-encoded&gt;    name -> recipe
 *   images/content/sha256/&lt;hex&gt;        OCI blobs by digest: layers (shared by every image that
 *                                      has them), configs, manifests
 *   images/tmp/                        work in progress: downloads (resumed by the next pull),
 *                                      unpacked trees; private (0700), emptied by prune
 * </pre>
 *
 * <p>Every change becomes visible by one rename, in an order that keeps the store consistent if
 * it stops at any point: layers, then the erofs file, then the recipe, then the name. What a
 * stopped pull or import leaves is unreferenced and goes with {@link #prune}.
 */
public final class ImageStore {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final Path root;
    private final RootfsBuilder builder;

    public ImageStore(AirlockDirs dirs) {
        this(dirs.images(), new RootfsBuilder());
    }

    ImageStore(Path root, RootfsBuilder builder) {
        this.root = root;
        this.builder = builder;
    }

    /** The stored form of a recipe entry. */
    record Recipe(
            String id,
            long sizeBytes,
            Instant created,
            long buildMillis,
            List<String> packages,
            List<String> commands,
            @Nullable ImageConfig config,
            @Nullable ImageSource source) {}

    /** A plain name ({@code base}, {@code mytool}), as built images have. */
    private static final Pattern PLAIN_NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");

    public List<Image> list() {
        Path refs = root.resolve("refs");
        if (!Files.isDirectory(refs)) {
            return List.of();
        }
        List<Image> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(refs)) {
            for (Path ref : files.sorted().toList()) {
                String file = ref.getFileName().toString();
                if (file.endsWith(".tmp")) {
                    continue;
                }
                load(URLDecoder.decode(file, StandardCharsets.UTF_8)).ifPresent(out::add);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /**
     * An image by name, or by id (a prefix of at least 6 hex digits). A name is matched as given,
     * then as a registry reference in its short form ({@code docker.io/library/debian} finds
     * {@code debian:latest}), then without a {@code :latest} tag ({@code base:latest} finds
     * {@code base}).
     */
    public Optional<Image> find(String nameOrId) {
        for (String name : nameCandidates(nameOrId)) {
            Optional<Image> byName = load(name);
            if (byName.isPresent()) {
                return byName;
            }
        }
        if (nameOrId.matches("(sha256:)?[0-9a-f]{6,64}")) {
            String prefix = nameOrId.replace("sha256:", "");
            List<Image> hits =
                    list().stream().filter(i -> i.id().startsWith(prefix)).toList();
            if (hits.stream().map(Image::id).distinct().count() > 1) {
                throw new ImageException("image id prefix '" + nameOrId + "' is ambiguous; give more digits");
            }
            if (hits.isEmpty() && prefix.length() == 64) {
                return unnamed(prefix);
            }
            return hits.stream().findFirst();
        }
        return Optional.empty();
    }

    /**
     * An image no name refers to, by its whole id: a build's own (the packages of an
     * {@code airlock.toml [image]} whose commands then run in a sandbox, the empty base of
     * {@code FROM scratch}). Its name is its id.
     */
    private Optional<Image> unnamed(String id) {
        Path recipes = root.resolve("recipes");
        if (!Files.isDirectory(recipes)) {
            return Optional.empty();
        }
        try (Stream<Path> files = Files.list(recipes)) {
            for (Path f : files.sorted().toList()) {
                String n = f.getFileName().toString();
                if (!n.endsWith(".json")) {
                    continue;
                }
                Optional<Image> i = loadRecipe(id, n.substring(0, n.length() - ".json".length()));
                if (i.isPresent() && i.get().id().equals(id)) {
                    return i;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Optional.empty();
    }

    /**
     * The image a sandbox asks for by name: present in the store, or a built-in that is built now.
     */
    public Image require(String nameOrId, Progress progress) {
        if (nameOrId.startsWith("/")) {
            return hostDirectory(Path.of(nameOrId));
        }
        Optional<Image> found = find(nameOrId);
        if (found.isPresent()) {
            return found.get();
        }
        Optional<ImageSpec> builtin = ImageSpec.builtin(nameOrId);
        if (builtin.isPresent()) {
            return ensure(builtin.get(), progress);
        }
        List<String> known = new ArrayList<>(ImageSpec.builtinNames());
        list().stream().map(Image::name).filter(n -> !known.contains(n)).forEach(known::add);
        throw new ImageException("unknown image '" + nameOrId + "': known images are " + String.join(", ", known)
                + "; pull one (airlock image pull REF), import one (airlock image import PATH), or define your own"
                + " in airlock.toml [image] and run: airlock image build");
    }

    /**
     * A host directory used as a root filesystem as it is (an OCI bundle's rootfs, which its
     * runtime shares into the sandbox): not stored, named {@code rootfs}, its id the hash of its path.
     */
    private static Image hostDirectory(Path dir) {
        if (!Files.isDirectory(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new ImageException("the root filesystem directory " + dir + " does not exist (or is a symlink)");
        }
        return new Image(
                "rootfs",
                Hashing.sha256(dir.toString()),
                "",
                dir,
                0,
                Instant.now(),
                0,
                List.of(),
                List.of(),
                ImageConfig.EMPTY,
                null);
    }

    /** The image for a spec, built only when no image of the same recipe exists. */
    public Image ensure(ImageSpec spec, Progress progress) {
        String recipe = recipeKey(spec);
        try (HostFiles.Lock ignored = lock()) {
            Optional<Image> existing = loadRecipe(spec.name(), recipe);
            if (existing.isPresent()) {
                writeRef(spec.name(), recipe);
                return existing.get();
            }
            return build(spec, recipe, progress, true);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The image for a spec, built only when no image of its recipe exists, and not named: found by
     * its id ({@link #find} takes a whole id), kept by prune like every built image.
     */
    public Image ensureUnnamed(ImageSpec spec, Progress progress) {
        String recipe = recipeKey(spec);
        try (HostFiles.Lock ignored = lock()) {
            Optional<Image> existing = loadRecipe(spec.name(), recipe);
            if (existing.isPresent()) {
                return existing.get();
            }
            return build(spec, recipe, progress, false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Builds the spec even when an image of its recipe exists (for {@code image build --no-cache}). */
    public Image rebuild(ImageSpec spec, Progress progress) {
        try (HostFiles.Lock ignored = lock()) {
            return build(spec, recipeKey(spec), progress, true);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Removes a name; the image's bytes go when no name refers to them any more and no sandbox
     * uses them.
     */
    public Image remove(String nameOrId, Predicate<String> usedBySandbox) {
        Image image = find(nameOrId)
                .orElseThrow(() -> new ImageException(
                        SandboxException.Kind.NOT_FOUND,
                        "no such image '" + nameOrId + "'; list them with: airlock image ls"));
        if (usedBySandbox.test(image.id())) {
            throw new ImageException(
                    SandboxException.Kind.CONFLICT,
                    "image '" + image.name() + "' is used by a sandbox; remove the sandbox first");
        }
        try (HostFiles.Lock ignored = lock()) {
            Files.deleteIfExists(refFile(image.name()));
            boolean stillNamed = list().stream().anyMatch(i -> i.id().equals(image.id()));
            if (!stillNamed) {
                Files.deleteIfExists(image.file());
                Files.deleteIfExists(root.resolve("recipes").resolve(image.recipe() + ".json"));
            }
            // its layers stay as a cache for the next pull; prune removes those no image uses
            return image;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Checks an image's bytes against its id; a mismatch means the cache entry is corrupt. */
    public void verify(Image image) {
        if (!Files.isRegularFile(image.file())) {
            throw new ImageException("image '" + image.name() + "' is corrupt: " + image.file() + " is missing");
        }
        String actual = Hashing.sha256(image.file());
        if (!actual.equals(image.id())) {
            throw new ImageException("image '" + image.name() + "' is corrupt: its content hash is "
                    + actual.substring(0, 12) + ", not its id " + image.shortId()
                    + "; remove it (airlock image rm " + image.name() + ") and "
                    + restoreAdvice(image.name(), image.source()));
        }
    }

    /**
     * What to tell a user whose sandbox's image file ({@code name}, {@code id}) is gone: how to get
     * that image back, by the way it came (pull, import, Dockerfile build, packages).
     */
    public String howToRestore(String name, String id) {
        ImageSource source = null;
        try {
            Path ref = refFile(name);
            if (isValidName(name) && Files.isRegularFile(ref)) {
                Recipe r = recipeOf(Files.readString(ref).strip());
                if (r.id().equals(id)) {
                    source = r.source();
                }
            }
            Path recipes = root.resolve("recipes");
            if (source == null && Files.isDirectory(recipes)) {
                try (Stream<Path> files = Files.list(recipes)) {
                    for (Path f : files.toList()) {
                        Recipe r = JSON.readValue(f.toFile(), Recipe.class);
                        if (r.id().equals(id) && r.source() != null) {
                            source = r.source();
                            break;
                        }
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // no record of it left: the advice for a built image below
        }
        return restoreAdvice(name, source);
    }

    private static String restoreAdvice(String name, @Nullable ImageSource source) {
        if (source == null) {
            return "rebuild it with: airlock image build " + name;
        }
        return switch (source.kind()) {
            case ImageSource.PULL -> "pull it again: airlock image pull " + source.reference();
            case ImageSource.IMPORT -> "import it again: airlock image import " + source.reference();
            default -> "build it again: airlock image build " + source.reference();
        };
    }

    static String recipeKey(ImageSpec spec) {
        return Hashing.sha256(spec.canonical()).substring(0, 24);
    }

    private Image build(ImageSpec spec, String recipe, Progress progress, boolean named) throws IOException {
        Path blobs = AirlockDirs.ensureDir(root.resolve("blobs"));
        long start = System.nanoTime();
        Path tmp = builder.build(spec, blobs, progress);
        String id = Hashing.sha256(tmp);
        Path file = blobs.resolve(id + ".erofs");
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        long millis = (System.nanoTime() - start) / 1_000_000;
        Recipe r =
                new Recipe(id, Files.size(file), Instant.now(), millis, spec.packages(), spec.commands(), null, null);
        Path recipes = AirlockDirs.ensureDir(root.resolve("recipes"));
        HostFiles.writeAtomically(recipes.resolve(recipe + ".json"), JSON.writeValueAsBytes(r));
        if (named) {
            writeRef(spec.name(), recipe);
        }
        progress.step("image " + spec.name() + " built: " + id.substring(0, 12) + ", " + (r.sizeBytes() >> 20)
                + " MiB, " + millis / 1000 + " s");
        return toImage(spec.name(), recipe, r);
    }

    private Optional<Image> load(String name) {
        if (!isValidName(name)) {
            return Optional.empty();
        }
        Path ref = refFile(name);
        if (!Files.isRegularFile(ref)) {
            return Optional.empty();
        }
        try {
            return loadRecipe(name, Files.readString(ref).strip());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Optional<Image> loadRecipe(String name, String recipe) {
        Path file = root.resolve("recipes").resolve(recipe + ".json");
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        Recipe r;
        try {
            r = JSON.readValue(file.toFile(), Recipe.class);
        } catch (RuntimeException e) {
            throw new ImageException("image store entry " + file + " is corrupt (" + e.getMessage()
                    + "); remove it with: airlock image rm " + name);
        }
        Image image = toImage(name, recipe, r);
        try {
            if (!Files.isRegularFile(image.file()) || Files.size(image.file()) != r.sizeBytes()) {
                // A truncated or missing blob is rebuilt by ensure(); say so rather than boot it.
                return Optional.empty();
            }
        } catch (IOException e) {
            return Optional.empty();
        }
        return Optional.of(image);
    }

    private Image toImage(String name, String recipe, Recipe r) {
        return new Image(
                name,
                r.id(),
                recipe,
                root.resolve("blobs").resolve(r.id() + ".erofs"),
                r.sizeBytes(),
                r.created(),
                r.buildMillis(),
                r.packages(),
                r.commands(),
                r.config() != null ? r.config() : ImageConfig.EMPTY,
                r.source());
    }

    private void writeRef(String name, String recipe) {
        AirlockDirs.ensureDir(root.resolve("refs"));
        HostFiles.writeAtomically(refFile(name), (recipe + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** A name's file: URL-encoded, so a reference's '/' and ':' stay inside one file name. */
    private Path refFile(String name) {
        return root.resolve("refs").resolve(URLEncoder.encode(name, StandardCharsets.UTF_8));
    }

    /** A plain name or a registry reference in its short form ({@code team/tool:1.2}). */
    public static boolean isValidName(String name) {
        if (PLAIN_NAME.matcher(name).matches()) {
            return true;
        }
        return ImageReference.tryParse(name).map(r -> r.familiar().equals(name)).orElse(false);
    }

    /**
     * The name an image given {@code wanted} is stored under: a plain name as is, a reference in
     * its short form with its tag ({@code team/tool} becomes {@code team/tool:latest}).
     */
    public static String storedName(String wanted) {
        if (PLAIN_NAME.matcher(wanted).matches()) {
            return wanted;
        }
        return ImageReference.tryParse(wanted)
                .map(ImageReference::familiar)
                .orElseThrow(() -> new ImageException("invalid image name '" + wanted
                        + "': use a name like mytool or a reference like team/tool:1.2"));
    }

    private static List<String> nameCandidates(String wanted) {
        List<String> out = new ArrayList<>();
        out.add(wanted);
        ImageReference.tryParse(wanted).map(ImageReference::familiar).ifPresent(out::add);
        if (wanted.endsWith(":latest")) {
            out.add(wanted.substring(0, wanted.length() - ":latest".length()));
        }
        return out.stream().distinct().toList();
    }

    // ---- layered (pulled, imported) images

    /** The recipe key of a layered image: its OCI config digest names its content exactly. */
    public static String layeredRecipe(String configDigest) {
        return Hashing.sha256("oci\nconfig=" + configDigest + "\nunpacker=" + LayeredImages.VERSION + "\n")
                .substring(0, 24);
    }

    /** Where the OCI blob of {@code digest} is kept (whether or not it is there). */
    public Path contentFile(String digest) {
        return root.resolve("content").resolve("sha256").resolve(dev.airlock.image.oci.Digests.hex(digest));
    }

    /**
     * The store's private work directory (0700: unpacked trees hold setuid files and file
     * capabilities that no other local user may reach), made or checked.
     */
    public Path tempDir() {
        Path tmp = root.resolve("tmp");
        try {
            Files.createDirectories(root);
            if (!Files.isDirectory(tmp)) {
                Files.createDirectory(
                        tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            }
            var attrs = Files.readAttributes(
                    tmp, java.nio.file.attribute.PosixFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS);
            if (!attrs.isDirectory() || !attrs.permissions().equals(PosixFilePermissions.fromString("rwx------"))) {
                // someone else's directory or a loosened one: make it private again, or refuse
                if (attrs.isSymbolicLink() || !attrs.owner().getName().equals(System.getProperty("user.name"))) {
                    throw new ImageException(tmp + " is not a private directory of this user; remove it");
                }
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx------"));
            }
            return tmp;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare " + tmp, e);
        }
    }

    /** The image a layered recipe made, if it is complete in the store (its erofs and its layers). */
    public Optional<Image> findLayered(String recipe) {
        Optional<Image> image = loadRecipe("", recipe);
        if (image.isEmpty()) {
            return image;
        }
        ImageSource src = image.get().source();
        if (src == null) {
            return Optional.empty();
        }
        for (ImageSource.Layer l : src.layers()) {
            if (!Files.isRegularFile(contentFile(l.digest()))) {
                return Optional.empty();
            }
        }
        return image;
    }

    /**
     * Names an existing layered image {@code name} (a re-pull of an unchanged image, or a second
     * name for it).
     */
    public Image tag(String name, Image image) {
        try (HostFiles.Lock ignored = lock()) {
            writeRef(name, image.recipe());
            return toImage(name, image.recipe(), recipeOf(image.recipe()));
        }
    }

    /**
     * Stores a layered image made in {@code tempDir()}: moves its new blobs (digest -> file) into
     * the content store and its erofs file into the blobs, then writes its recipe and names it.
     * Each step is one rename, in that order, so a crash at any point leaves no name pointing at
     * anything missing.
     */
    public Image commitLayered(
            @Nullable String name,
            String recipe,
            Path erofs,
            long buildMillis,
            ImageConfig config,
            ImageSource source,
            Map<String, Path> newBlobs) {
        try (HostFiles.Lock ignored = lock()) {
            for (Map.Entry<String, Path> b : newBlobs.entrySet()) {
                Path target = contentFile(b.getKey());
                if (Files.isRegularFile(target)) {
                    Files.deleteIfExists(b.getValue());
                    continue;
                }
                Files.createDirectories(target.getParent());
                Files.move(b.getValue(), target, StandardCopyOption.ATOMIC_MOVE);
            }
            Path blobs = AirlockDirs.ensureDir(root.resolve("blobs"));
            String id = Hashing.sha256(erofs);
            Path file = blobs.resolve(id + ".erofs");
            Files.move(erofs, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            Recipe r =
                    new Recipe(id, Files.size(file), Instant.now(), buildMillis, List.of(), List.of(), config, source);
            Path recipes = AirlockDirs.ensureDir(root.resolve("recipes"));
            HostFiles.writeAtomically(recipes.resolve(recipe + ".json"), JSON.writeValueAsBytes(r));
            if (name == null) {
                return toImage(id, recipe, r); // unnamed: found by its id
            }
            writeRef(name, recipe);
            return toImage(name, recipe, r);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot store image " + (name != null ? name : "(unnamed)"), e);
        }
    }

    /**
     * Moves a verified blob (a layer a build step made) into the content store under its digest,
     * at once and by one rename, so the build's cache can name it whatever happens later.
     */
    public void putContent(String digest, Path file) {
        Path target = contentFile(digest);
        try {
            if (Files.isRegularFile(target)) {
                Files.deleteIfExists(file);
                return;
            }
            Files.createDirectories(target.getParent());
            Files.move(file, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot store " + digest + " in " + root, e);
        }
    }

    /** What a build step made: a layer, or nothing (it changed no file). */
    public record CachedStep(ImageSource.@Nullable Layer layer) {}

    /**
     * What the build step of {@code key} made before, if its layer is still in the store. Kept in
     * {@code build-cache/<key>.json}.
     */
    public Optional<CachedStep> cachedStep(String key) {
        Path f = root.resolve("build-cache").resolve(key + ".json");
        if (!Files.isRegularFile(f)) {
            return Optional.empty();
        }
        try {
            CachedStep c = JSON.readValue(f.toFile(), CachedStep.class);
            ImageSource.Layer l = c.layer();
            if (l != null && !Files.isRegularFile(contentFile(l.digest()))) {
                return Optional.empty();
            }
            return Optional.of(c);
        } catch (RuntimeException e) {
            return Optional.empty(); // a damaged entry is a miss; the step runs again and replaces it
        }
    }

    /** Records what the build step of {@code key} made; its layer must be in the content store already. */
    public void cacheStep(String key, CachedStep step) {
        Path dir = AirlockDirs.ensureDir(root.resolve("build-cache"));
        HostFiles.writeAtomically(dir.resolve(key + ".json"), JSON.writeValueAsBytes(step));
    }

    /** An image's disk use: its erofs file, its layers, and how much of that other images share. */
    public record Usage(Image image, long layerBytes, long sharedBytes, long uniqueBytes) {
        public long totalBytes() {
            return image.sizeBytes() + layerBytes;
        }
    }

    /**
     * Disk use per named image. A layer used by more than one image (by id) is shared; the rest,
     * the erofs file included, is unique to the image.
     */
    public List<Usage> usage() {
        List<Image> images = list();
        Map<String, Set<String>> users = new HashMap<>();
        for (Image i : images) {
            if (i.source() != null) {
                for (ImageSource.Layer l : i.source().layers()) {
                    users.computeIfAbsent(l.digest(), k -> new HashSet<>()).add(i.id());
                }
            }
        }
        List<Usage> out = new ArrayList<>();
        for (Image i : images) {
            long layers = 0;
            long shared = 0;
            if (i.source() != null) {
                Set<String> seen = new HashSet<>();
                for (ImageSource.Layer l : i.source().layers()) {
                    if (!seen.add(l.digest())) {
                        continue; // the same blob twice in one image is stored once
                    }
                    layers += l.size();
                    if (users.getOrDefault(l.digest(), Set.of()).size() > 1) {
                        shared += l.size();
                    }
                }
            }
            out.add(new Usage(i, layers, shared, i.sizeBytes() + layers - shared));
        }
        return out;
    }

    /** What {@link #prune} removed. */
    public record PruneReport(int images, int blobs, int partials, long bytes) {}

    /**
     * Removes what no name and no sandbox uses: images that lost their last name (a re-pull moved
     * it), OCI blobs no image refers to, and the work left in {@code tmp/} by stopped pulls and
     * imports (their partial downloads included). Refuses while a pull or import runs.
     */
    public PruneReport prune(Predicate<String> usedBySandbox) {
        try (HostFiles.Lock ignored = lock();
                Lease exclusive = Lease.exclusive(root)) {
            Set<String> namedRecipes = new HashSet<>();
            Path refs = root.resolve("refs");
            if (Files.isDirectory(refs)) {
                try (Stream<Path> files = Files.list(refs)) {
                    for (Path ref : files.toList()) {
                        if (!ref.getFileName().toString().endsWith(".tmp")) {
                            namedRecipes.add(Files.readString(ref).strip());
                        }
                    }
                }
            }
            int images = 0;
            long bytes = 0;
            Set<String> keptIds = new HashSet<>();
            Set<String> keptBlobs = new HashSet<>();
            Path recipes = root.resolve("recipes");
            if (Files.isDirectory(recipes)) {
                try (Stream<Path> files = Files.list(recipes)) {
                    for (Path f : files.toList()) {
                        String name = f.getFileName().toString();
                        if (!name.endsWith(".json")) {
                            continue;
                        }
                        String recipe = name.substring(0, name.length() - ".json".length());
                        Recipe r;
                        try {
                            r = JSON.readValue(f.toFile(), Recipe.class);
                        } catch (RuntimeException e) {
                            continue; // a corrupt entry is reported by ls/inspect, not silently deleted
                        }
                        if (namedRecipes.contains(recipe) || usedBySandbox.test(r.id())) {
                            keptIds.add(r.id());
                            if (r.source() != null) {
                                r.source().layers().forEach(l -> keptBlobs.add(l.digest()));
                                keptBlobs.add(r.source().configDigest());
                                keptBlobs.add(r.source().manifestDigest());
                            }
                            continue;
                        }
                        if (r.source() == null) {
                            continue; // a built image's recipe: image rm handles those
                        }
                        Files.deleteIfExists(f);
                        images++;
                    }
                }
            }
            // the erofs files every remaining recipe names (built images' included) stay
            if (Files.isDirectory(recipes)) {
                try (Stream<Path> files = Files.list(recipes)) {
                    for (Path f : files.toList()) {
                        try {
                            keptIds.add(JSON.readValue(f.toFile(), Recipe.class).id());
                        } catch (RuntimeException e) {
                            // unreadable: skipped above as well
                        }
                    }
                }
            }
            Path blobsDir = root.resolve("blobs");
            if (Files.isDirectory(blobsDir)) {
                try (Stream<Path> files = Files.list(blobsDir)) {
                    for (Path f : files.toList()) {
                        String n = f.getFileName().toString();
                        if (n.endsWith(".erofs")
                                && !keptIds.contains(n.substring(0, n.length() - 6))
                                && !usedBySandbox.test(n.substring(0, n.length() - 6))) {
                            bytes += Files.size(f);
                            Files.delete(f);
                        }
                    }
                }
            }
            int blobs = 0;
            Path content = root.resolve("content").resolve("sha256");
            if (Files.isDirectory(content)) {
                try (Stream<Path> files = Files.list(content)) {
                    for (Path f : files.toList()) {
                        if (!keptBlobs.contains("sha256:" + f.getFileName())) {
                            bytes += Files.size(f);
                            Files.delete(f);
                            blobs++;
                        }
                    }
                }
            }
            // build steps whose layer went: their entries would only be misses
            Path cache = root.resolve("build-cache");
            if (Files.isDirectory(cache)) {
                try (Stream<Path> files = Files.list(cache)) {
                    for (Path f : files.toList()) {
                        try {
                            ImageSource.Layer l =
                                    JSON.readValue(f.toFile(), CachedStep.class).layer();
                            if (l != null && !Files.isRegularFile(contentFile(l.digest()))) {
                                Files.delete(f);
                            }
                        } catch (RuntimeException e) {
                            Files.delete(f);
                        }
                    }
                }
            }
            int partials = 0;
            Path tmp = root.resolve("tmp");
            if (Files.isDirectory(tmp)) {
                try (Stream<Path> files = Files.list(tmp)) {
                    for (Path f : files.toList()) {
                        bytes += sizeOf(f);
                        HostFiles.deleteTree(f);
                        partials++;
                    }
                }
            }
            return new PruneReport(images, blobs, partials, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prune " + root, e);
        }
    }

    private static long sizeOf(Path p) throws IOException {
        try (Stream<Path> walk = Files.walk(p)) {
            long sum = 0;
            for (Path f : walk.toList()) {
                var a = Files.readAttributes(
                        f, java.nio.file.attribute.BasicFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                if (a.isRegularFile()) {
                    sum += a.size();
                }
            }
            return sum;
        }
    }

    private Recipe recipeOf(String recipe) {
        Path file = root.resolve("recipes").resolve(recipe + ".json");
        try {
            return JSON.readValue(file.toFile(), Recipe.class);
        } catch (RuntimeException e) {
            throw new ImageException("image store entry " + file + " is corrupt (" + e.getMessage() + ")");
        }
    }

    /**
     * Held (shared) by every pull and import while it works, taken exclusively by prune: prune
     * never deletes the downloads and unpacked trees of work in progress, nor the blobs a pull
     * is about to name. File locks are per process, so the shared lock is counted in the JVM.
     */
    public Lease lease() {
        return Lease.shared(root);
    }

    /** A hold on the store's work in progress; close to release. */
    public static final class Lease implements AutoCloseable {
        private static final Map<Path, Lease> SHARED = new LinkedHashMap<>();
        private static final Map<Path, Integer> COUNT = new HashMap<>();

        private final Path root;
        private final FileChannel channel;
        private final FileLock lock;
        private final boolean shared;

        private Lease(Path root, FileChannel channel, FileLock lock, boolean shared) {
            this.root = root;
            this.channel = channel;
            this.lock = lock;
            this.shared = shared;
        }

        static Lease shared(Path root) {
            Path key = root.toAbsolutePath().normalize();
            synchronized (SHARED) {
                Lease held = SHARED.get(key);
                if (held == null) {
                    held = open(key, true);
                    SHARED.put(key, held);
                }
                COUNT.merge(key, 1, Integer::sum);
                return held;
            }
        }

        static Lease exclusive(Path root) {
            Path key = root.toAbsolutePath().normalize();
            synchronized (SHARED) {
                if (SHARED.containsKey(key)) {
                    throw new ImageException("a pull or import is running; prune after it ends");
                }
                return open(key, false);
            }
        }

        private static Lease open(Path root, boolean shared) {
            try {
                Files.createDirectories(root);
                FileChannel ch = FileChannel.open(
                        root.resolve(".work-lock"),
                        StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE,
                        StandardOpenOption.READ);
                FileLock l;
                try {
                    l = shared ? ch.lock(0, Long.MAX_VALUE, true) : ch.tryLock(0, Long.MAX_VALUE, false);
                } catch (IOException | RuntimeException e) {
                    ch.close();
                    throw e;
                }
                if (l == null) {
                    ch.close();
                    throw new ImageException("a pull or import is running; prune after it ends");
                }
                return new Lease(root, ch, l, shared);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot lock " + root, e);
            }
        }

        @Override
        public void close() {
            synchronized (SHARED) {
                if (shared) {
                    int left = COUNT.merge(root, -1, Integer::sum);
                    if (left > 0) {
                        return;
                    }
                    COUNT.remove(root);
                    SHARED.remove(root);
                }
                try {
                    lock.release();
                    channel.close();
                } catch (IOException e) {
                    // closing the channel releases the lock regardless
                }
            }
        }
    }

    /** Serialises builds and removals across processes; closing the channel releases the lock. */
    private HostFiles.Lock lock() {
        return HostFiles.lock(root.resolve(".lock"));
    }
}
