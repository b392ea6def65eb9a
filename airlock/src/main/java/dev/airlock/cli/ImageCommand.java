package dev.airlock.cli;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageException;
import dev.airlock.image.ImageSpec;
import dev.airlock.image.ImageStore;
import dev.airlock.image.ProjectImage;
import dev.airlock.service.RemovedImage;
import dev.airlock.service.SandboxService;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
        name = "image",
        description = "Manage root filesystem images.",
        subcommands = {
            ImageCommand.Ls.class,
            ImageCommand.Build.class,
            ImageCommand.Inspect.class,
            ImageCommand.Rm.class
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
            List<Image> images = store().list();
            if (json) {
                Output.json(images);
                return 0;
            }
            Output.table(
                    System.out,
                    List.of("NAME", "ID", "SIZE", "CREATED"),
                    images.stream()
                            .map(i -> List.of(i.name(), i.shortId(), (i.sizeBytes() >> 20) + " MiB", ago(i.created())))
                            .toList());
            return 0;
        }
    }

    @Command(
            name = "build",
            description = "Build a built-in image (base, python, node) or the [image] of an airlock.toml.")
    static final class Build implements Callable<Integer> {
        @Parameters(
                arity = "0..1",
                paramLabel = "NAME|DIR",
                description = "A built-in image name, or a directory with airlock.toml (default: .).")
        @Nullable
        String target;

        @Option(
                names = {"-f", "--file"},
                description = "The airlock.toml to read.")
        @Nullable
        Path file;

        @Option(names = "--no-cache", description = "Build even when an identical image exists.")
        boolean noCache;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            ImageSpec spec;
            if (file == null && target != null && ImageSpec.builtin(target).isPresent()) {
                spec = ImageSpec.builtin(target).orElseThrow();
            } else {
                Path toml = file != null
                        ? file
                        : Path.of(target == null ? "." : target).resolve("airlock.toml");
                if (!Files.isRegularFile(toml)) {
                    throw new ImageException("no image named '" + (target == null ? "." : target) + "' and no " + toml
                            + "; build one of " + String.join(", ", ImageSpec.builtinNames())
                            + " or write an airlock.toml with an [image] table");
                }
                spec = ProjectImage.read(toml);
            }
            ImageStore store = store();
            Image image = noCache ? store.rebuild(spec, Progress.STDERR) : store.ensure(spec, Progress.STDERR);
            if (json) {
                Output.json(image);
            } else {
                System.out.println(image.name() + " " + image.id());
            }
            return 0;
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
