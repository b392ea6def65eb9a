package dev.airlock.cli;

import dev.airlock.build.ImageBuilder;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageException;
import dev.airlock.image.ImageSpec;
import dev.airlock.image.ImageStore;
import dev.airlock.image.oci.ImageImport;
import dev.airlock.image.oci.ImagePull;
import dev.airlock.image.oci.ImageReference;
import dev.airlock.image.oci.Platform;
import dev.airlock.image.oci.RegistryClient;
import dev.airlock.image.oci.RegistryCredentials;
import dev.airlock.service.ImageBuildSpec;
import dev.airlock.service.RemovedImage;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
        name = "image",
        description = "Manage root filesystem images: build, pull from registries, import archives.",
        subcommands = {
            ImageCommand.Ls.class,
            ImageCommand.Build.class,
            ImageCommand.Pull.class,
            ImageCommand.Import.class,
            ImageCommand.Inspect.class,
            ImageCommand.Rm.class,
            ImageCommand.Prune.class
        })
final class ImageCommand {

    static ImageStore store() {
        return new ImageStore(AirlockDirs.fromEnvironment());
    }

    @Command(name = "ls", aliases = "list", description = "List images.")
    static final class Ls implements Callable<Integer> {
        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            List<ImageStore.Usage> usage = store().usage();
            if (json) {
                Output.json(usage.stream()
                        .map(u -> new Listed(
                                u.image().name(),
                                u.image().id(),
                                u.image().source() != null ? u.image().source().kind() : "build",
                                u.image().created(),
                                u.image().sizeBytes(),
                                u.layerBytes(),
                                u.sharedBytes(),
                                u.uniqueBytes()))
                        .toList());
                return 0;
            }
            Output.table(
                    System.out,
                    List.of("NAME", "ID", "SIZE", "SHARED", "UNIQUE", "CREATED"),
                    usage.stream()
                            .map(u -> List.of(
                                    u.image().name(),
                                    u.image().shortId(),
                                    size(u.totalBytes()),
                                    size(u.sharedBytes()),
                                    size(u.uniqueBytes()),
                                    ago(u.image().created())))
                            .toList());
            return 0;
        }
    }

    /** One row of {@code image ls --json}: sizes in bytes; SIZE counts the erofs image and the layers kept. */
    record Listed(
            String name,
            String id,
            String origin,
            Instant created,
            long imageBytes,
            long layerBytes,
            long sharedBytes,
            long uniqueBytes) {}

    /** What pull and import share: the name to store under, the platform, progress or not. */
    static final class Storing {
        @Option(
                names = {"-t", "--tag"},
                paramLabel = "NAME",
                description = "Store the image under this name (default: the reference, or the name the archive"
                        + " gives it).")
        @Nullable
        String name;

        @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]", description = "Default: linux/amd64.")
        String platform = "linux/amd64";

        @Option(
                names = {"-q", "--quiet"},
                description = "No progress lines.")
        boolean quiet;

        Progress progress() {
            return quiet ? Progress.SILENT : Progress.STDERR;
        }
    }

    @Command(name = "pull", description = "Pull an image from an OCI/Docker registry into the store.")
    static final class Pull implements Callable<Integer> {
        @Parameters(paramLabel = "REF", description = "[REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST]")
        String reference = "";

        @Mixin
        Storing storing = new Storing();

        @Option(
                names = "--insecure",
                description = "Allow plain HTTP (and so no TLS) to this registry; loopback registries always are,"
                        + " others can be listed in AIRLOCK_INSECURE_REGISTRIES.")
        boolean insecure;

        @Override
        public Integer call() {
            ImageReference ref = ImageReference.parse(reference);
            try (RegistryClient client = new RegistryClient(
                    RegistryCredentials.fromEnvironment(), insecure, RegistryClient.insecureFromEnvironment())) {
                Image image = new ImagePull(store(), client, storing.progress())
                        .pull(ref, Platform.parse(storing.platform), storing.name);
                System.out.println(image.name() + " " + image.id());
            }
            return 0;
        }
    }

    @Command(
            name = "import",
            description = "Import an OCI image layout (directory or tar) or a docker/podman save archive.")
    static final class Import implements Callable<Integer> {
        @Parameters(
                paramLabel = "PATH[:TAG]",
                description = "The layout or archive; :TAG picks an image when it holds several.")
        String path = "";

        @Mixin
        Storing storing = new Storing();

        @Override
        public Integer call() {
            Image image = new ImageImport(store(), storing.progress())
                    .importFrom(path, storing.name, Platform.parse(storing.platform));
            System.out.println(image.name() + " " + image.id());
            return 0;
        }
    }

    @Command(
            name = "prune",
            description = "Remove layers and images nothing uses, and the work left by stopped pulls and imports.")
    static final class Prune implements Callable<Integer> {
        @Override
        public Integer call() {
            // The daemon knows which images its sandboxes use.
            java.util.Set<String> used = SandboxCommands.client().list().stream()
                    .map(SandboxInfo::imageId)
                    .collect(java.util.stream.Collectors.toSet());
            ImageStore.PruneReport r = store().prune(used::contains);
            System.out.println("removed " + r.images() + " unnamed images, " + r.blobs() + " layers and documents, "
                    + r.partials() + " unfinished pulls/imports: " + size(r.bytes()) + " freed");
            return 0;
        }
    }

    @Command(
            name = "build",
            description = "Build an image: from a Dockerfile (its RUN steps in a sandbox), a built-in (base, python,"
                    + " node), or the [image] of an airlock.toml.")
    static final class Build implements Callable<Integer> {
        @Parameters(
                arity = "0..1",
                paramLabel = "NAME|DIR",
                description = "A built-in image name, or the build context / airlock.toml directory (default: .).")
        @Nullable
        String target;

        @Option(
                names = {"-f", "--file"},
                description = "The Dockerfile (default: DIR/Dockerfile) or the airlock.toml to read.")
        @Nullable
        Path file;

        @Option(
                names = {"-t", "--tag"},
                paramLabel = "NAME",
                description = "The name of the image a Dockerfile builds (default: unnamed, shown by its id).")
        @Nullable
        String tag;

        @Option(names = "--build-arg", paramLabel = "NAME=VALUE", description = "A Dockerfile ARG's value.")
        List<String> buildArgs = new ArrayList<>();

        @Option(names = "--target", paramLabel = "STAGE", description = "Build the Dockerfile's stage of this name.")
        @Nullable
        String stage;

        @Option(
                names = "--runtime",
                paramLabel = "RUNTIME",
                description = "The runtime of the sandboxes RUN steps execute in (default: the host's).")
        @Nullable
        String runtime;

        @Option(
                names = "--allow-host",
                paramLabel = "HOST",
                description = "A host RUN steps may reach through the egress proxy (repeatable); none: no network.")
        List<String> allowHosts = new ArrayList<>();

        @Option(names = "--no-cache", description = "Build even when an identical image or step exists.")
        boolean noCache;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            Image image;
            if (file == null && target != null && ImageSpec.builtin(target).isPresent()) {
                ImageSpec spec = ImageSpec.builtin(target).orElseThrow();
                ImageStore store = store();
                image = noCache ? store.rebuild(spec, Progress.STDERR) : store.ensure(spec, Progress.STDERR);
            } else {
                image = build();
            }
            if (json) {
                Output.json(image);
            } else {
                System.out.println(image.name() + " " + image.id());
            }
            return 0;
        }

        /**
         * A Dockerfile or an airlock.toml recipe, built here (with this user's registry logins for
         * FROM); RUN steps and the recipe's commands run in sandboxes through the daemon.
         */
        private Image build() {
            Path dir = Path.of(target == null ? "." : target);
            if (!Files.isDirectory(dir)) {
                throw new ImageException("no image named '" + dir + "' and no such directory; build one of "
                        + String.join(", ", ImageSpec.builtinNames())
                        + ", a directory with a Dockerfile or an airlock.toml with an [image] table, or give a"
                        + " Dockerfile with -f");
            }
            Map<String, String> args = new LinkedHashMap<>();
            for (String a : buildArgs) {
                int eq = a.indexOf('=');
                if (eq <= 0) {
                    String env = System.getenv(a);
                    if (env == null) {
                        continue; // Docker's rule: --build-arg NAME takes NAME from the environment, if set
                    }
                    args.put(a, env);
                } else {
                    args.put(a.substring(0, eq), a.substring(eq + 1));
                }
            }
            if (tag != null && !ImageStore.isValidName(ImageStore.storedName(tag))) {
                throw new ImageException(
                        "invalid image name '" + tag + "'; use letters, digits, '.', '_', '-', '/'" + " and ':'");
            }
            ImageBuildSpec spec = new ImageBuildSpec(
                    dir.toAbsolutePath().toString(),
                    file == null ? null : file.toAbsolutePath().toString(),
                    tag,
                    args,
                    stage,
                    runtime,
                    allowHosts,
                    noCache);
            return new ImageBuilder(SandboxCommands.client(), store(), Progress.STDERR, System.err).build(spec);
        }
    }

    @Command(name = "inspect", description = "Show an image's details (and verify its content hash).")
    static final class Inspect implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE")
        String name = "";

        @Override
        public Integer call() {
            ImageStore store = store();
            Image image = store.find(name)
                    .orElseThrow(
                            () -> new ImageException("no such image '" + name + "'; list them with: airlock image ls"));
            store.verify(image);
            Output.json(image);
            return 0;
        }
    }

    @Command(name = "rm", aliases = "remove", description = "Remove an image.")
    static final class Rm implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE", arity = "1..*")
        List<String> names = List.of();

        @Override
        public Integer call() {
            // Through the daemon: it knows which sandboxes use an image and what the runtimes hold of it.
            SandboxService client = SandboxCommands.client();
            for (String n : names) {
                RemovedImage removed = client.removeImage(n);
                System.out.println("removed " + removed.name() + " " + removed.shortId());
            }
            return 0;
        }
    }

    static String size(long bytes) {
        if (bytes < 1 << 20) {
            return (bytes >> 10) + " KiB";
        }
        return String.format("%.1f MiB", bytes / 1048576.0);
    }

    static String ago(Instant t) {
        Duration d = Duration.between(t, Instant.now());
        if (d.toMinutes() < 1) {
            return d.toSeconds() + " seconds ago";
        }
        if (d.toHours() < 1) {
            return d.toMinutes() + " minutes ago";
        }
        if (d.toDays() < 1) {
            return d.toHours() + " hours ago";
        }
        return d.toDays() + " days ago";
    }
}
