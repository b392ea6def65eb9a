package dev.airlock.image;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns an {@link ImageSpec} into an erofs file: mmdebstrap installs the packages into a
 * directory from the host's own Debian mirror, the spec's commands run inside it, and
 * mkfs.erofs packs it. No root loop mounts are needed.
 */
final class RootfsBuilder {
    /** Part of every recipe key: bump it when the build steps below change the result. */
    static final String VERSION = "1";

    private static final List<String> SLIMMING = List.of(
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "--dpkgopt=path-exclude=/usr/share/info/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--dpkgopt=path-include=/usr/share/locale/locale.alias");

    /** Builds into a temporary file inside {@code outDir} and returns it. */
    Path build(ImageSpec spec, Path outDir, Progress progress) {
        Path work;
        try {
            work = Files.createTempDirectory(outDir, "build-" + spec.name() + "-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            Path tree = work.resolve("rootfs");
            List<String> argv = new ArrayList<>(List.of(
                    "mmdebstrap",
                    "--variant=minbase",
                    "--mode=root",
                    "--format=directory",
                    "--include=" + String.join(",", spec.packages())));
            argv.addAll(SLIMMING);
            for (String cmd : spec.commands()) {
                argv.add("--customize-hook=chroot \"$1\" /bin/sh -ec " + shellQuote(cmd));
            }
            // Leave no apt lists or machine identity in a shared image; the agent sets identity.
            argv.add("--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin"
                    + " \"$1\"/etc/machine-id \"$1\"/var/log/*.log");
            argv.add(spec.suite());
            argv.add(tree.toString());
            argv.add(hostMirror());
            progress.step("image " + spec.name() + ": installing "
                    + spec.packages().size() + " packages and their dependencies with mmdebstrap (about a minute)");
            HostCommand.Result r = HostCommand.run(argv, null, line -> {
                if (line.startsWith("I: ") || line.startsWith("E: ") || line.startsWith("W: ")) {
                    progress.step("image " + spec.name() + ": " + line.substring(3));
                }
            });
            if (!r.ok()) {
                throw new ImageException("building image '" + spec.name() + "' failed in mmdebstrap (exit "
                        + r.exitCode() + "):\n" + KernelBuild.tail(r.output()));
            }
            Path out = work.resolveSibling(work.getFileName() + ".erofs");
            progress.step("image " + spec.name() + ": packing erofs");
            // Fixed timestamps and uuid make the same tree produce the same bytes, hence the same id.
            HostCommand.Result mk = HostCommand.run(
                    List.of(
                            "mkfs.erofs",
                            "-T0",
                            "-U00000000-0000-0000-0000-000000000001",
                            out.toString(),
                            tree.toString()),
                    null,
                    null);
            if (!mk.ok()) {
                throw new ImageException("mkfs.erofs failed for image '" + spec.name() + "':\n" + mk.output());
            }
            return out;
        } finally {
            HostFiles.deleteTree(work);
        }
    }

    /** The first Debian archive URI the host's apt uses, so builds go where the host's apt goes. */
    static String hostMirror() {
        Pattern deb822 = Pattern.compile("(?m)^URIs:\\s*(\\S+)");
        Pattern oneLine = Pattern.compile("(?m)^deb\\s+(?:\\[[^]]*]\\s+)?(\\S+)\\s+\\S+");
        List<Path> files = new ArrayList<>();
        files.add(Path.of("/etc/apt/sources.list"));
        try (var s = Files.list(Path.of("/etc/apt/sources.list.d"))) {
            s.filter(p -> p.toString().endsWith(".sources") || p.toString().endsWith(".list"))
                    .sorted()
                    .forEach(files::add);
        } catch (IOException e) {
            // No sources.list.d: fall through to the main file or the default.
        }
        for (Path f : files) {
            try {
                String text = Files.readString(f);
                for (Pattern p : List.of(deb822, oneLine)) {
                    Matcher m = p.matcher(text);
                    while (m.find()) {
                        String uri = m.group(1);
                        if (uri.contains("/debian") && !uri.contains("security")) {
                            return uri;
                        }
                    }
                }
            } catch (IOException e) {
                // Unreadable file: try the next.
            }
        }
        return "http://deb.debian.org/debian";
    }

    private static String shellQuote(String s) {
        return "'" + s.replace("'", "'\"'\"'") + "'";
    }
}
