package dev.airlock.image;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.stream.Stream;
import tools.jackson.databind.json.JsonMapper;

/**
 * Content-addressed store of read-only root filesystem images (erofs). Many sandboxes boot from
 * one image file at once; each gets its own writable layer, so nothing here is ever copied per
 * sandbox.
 *
 * <pre>
 *   images/blobs/&lt;sha256&gt;.erofs     the image bytes, named by their hash
 *   images/recipes/&lt;recipe&gt;.json    what was built from a spec (hash of the spec)
 *   images/refs/&lt;name&gt;              name -> recipe
 * </pre>
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
            List<String> commands) {}

    public List<Image> list() {
        Path refs = root.resolve("refs");
        if (!Files.isDirectory(refs)) {
            return List.of();
        }
        List<Image> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(refs)) {
            for (Path ref : files.sorted().toList()) {
                load(ref.getFileName().toString()).ifPresent(out::add);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** An image by name, or by id (a prefix of at least 6 hex digits). */
    public Optional<Image> find(String nameOrId) {
        Optional<Image> byName = load(nameOrId);
        if (byName.isPresent()) {
            return byName;
        }
        if (nameOrId.matches("(sha256:)?[0-9a-f]{6,64}")) {
            String prefix = nameOrId.replace("sha256:", "");
            List<Image> hits =
                    list().stream().filter(i -> i.id().startsWith(prefix)).toList();
            if (hits.stream().map(Image::id).distinct().count() > 1) {
                throw new ImageException("image id prefix '" + nameOrId + "' is ambiguous; give more digits");
            }
            return hits.stream().findFirst();
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
                + "; define your own in airlock.toml [image] and run: airlock image build");
    }

    /**
     * A host directory used as a root filesystem as it is (an OCI bundle's rootfs, which its
     * runtime shares into the sandbox): not stored, named {@code rootfs}, its id the hash of its path.
     */
    private static Image hostDirectory(Path dir) {
        if (!Files.isDirectory(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new ImageException("the root filesystem directory " + dir + " does not exist (or is a symlink)");
        }
        return new Image("rootfs", Hashing.sha256(dir.toString()), "", dir, 0, Instant.now(), 0, List.of(), List.of());
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
            return build(spec, recipe, progress);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Builds the spec even when an image of its recipe exists (for {@code image build --no-cache}). */
    public Image rebuild(ImageSpec spec, Progress progress) {
        try (HostFiles.Lock ignored = lock()) {
            return build(spec, recipeKey(spec), progress);
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
            Files.deleteIfExists(root.resolve("refs").resolve(image.name()));
            boolean stillNamed = list().stream().anyMatch(i -> i.id().equals(image.id()));
            if (!stillNamed) {
                Files.deleteIfExists(image.file());
                Files.deleteIfExists(root.resolve("recipes").resolve(image.recipe() + ".json"));
            }
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
                    + "; rebuild it with: airlock image build " + image.name());
        }
    }

    static String recipeKey(ImageSpec spec) {
        return Hashing.sha256(spec.canonical()).substring(0, 24);
    }

    private Image build(ImageSpec spec, String recipe, Progress progress) throws IOException {
        Path blobs = AirlockDirs.ensureDir(root.resolve("blobs"));
        long start = System.nanoTime();
        Path tmp = builder.build(spec, blobs, progress);
        String id = Hashing.sha256(tmp);
        Path file = blobs.resolve(id + ".erofs");
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        long millis = (System.nanoTime() - start) / 1_000_000;
        Recipe r = new Recipe(id, Files.size(file), Instant.now(), millis, spec.packages(), spec.commands());
        Path recipes = AirlockDirs.ensureDir(root.resolve("recipes"));
        HostFiles.writeAtomically(recipes.resolve(recipe + ".json"), JSON.writeValueAsBytes(r));
        writeRef(spec.name(), recipe);
        progress.step("image " + spec.name() + " built: " + id.substring(0, 12) + ", " + (r.sizeBytes() >> 20)
                + " MiB, " + millis / 1000 + " s");
        return toImage(spec.name(), recipe, r);
    }

    private Optional<Image> load(String name) {
        if (!name.matches("[a-z0-9][a-z0-9._-]{0,62}")) {
            return Optional.empty();
        }
        Path ref = root.resolve("refs").resolve(name);
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
                r.commands());
    }

    private void writeRef(String name, String recipe) {
        Path refs = AirlockDirs.ensureDir(root.resolve("refs"));
        HostFiles.writeAtomically(
                refs.resolve(name), (recipe + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** Serialises builds and removals across processes; closing the channel releases the lock. */
    private HostFiles.Lock lock() {
        return HostFiles.lock(root.resolve(".lock"));
    }
}
