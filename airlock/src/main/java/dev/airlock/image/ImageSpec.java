package dev.airlock.image;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * What a root filesystem is made of: a Debian suite, packages, and shell commands run inside it
 * after the packages are installed. Built-in images are specs too; a user's {@code [image]}
 * table in airlock.toml names one of them in {@code from} and adds to it.
 */
public record ImageSpec(String name, String suite, List<String> packages, List<String> commands) {
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");
    private static final Pattern PACKAGE = Pattern.compile("[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?");
    static final String SUITE = "bookworm";

    /** Packages every image has: what an agent and the workspace flow use. */
    static final List<String> BASE_PACKAGES = List.of(
            "bash",
            "coreutils",
            "git",
            "ca-certificates",
            "procps",
            "less",
            "curl",
            "tar",
            "gzip",
            "xz-utils",
            "findutils",
            "grep",
            "sed",
            "iproute2",
            "passwd",
            "openssh-client",
            "patch",
            "diffutils",
            "file");

    /** Every image gets an unprivileged user for {@code --user airlock}. */
    static final List<String> BASE_COMMANDS = List.of("useradd --create-home --uid 1000 --shell /bin/bash airlock");

    private static final Map<String, ImageSpec> BUILTIN = Map.of(
            "base", new ImageSpec("base", SUITE, BASE_PACKAGES, BASE_COMMANDS),
            "python", extend("python", BASE_PACKAGES, List.of("python3", "python3-pip", "python3-venv"), BASE_COMMANDS),
            "node", extend("node", BASE_PACKAGES, List.of("nodejs", "npm"), BASE_COMMANDS));

    public ImageSpec {
        if (!NAME.matcher(name).matches()) {
            throw new ImageException("invalid image name '" + name
                    + "': use lowercase letters, digits, '.', '_' and '-' (at most 63 characters)");
        }
        for (String p : packages) {
            if (!PACKAGE.matcher(p).matches()) {
                throw new ImageException("invalid Debian package name '" + p + "' in image '" + name + "'");
            }
        }
        packages = List.copyOf(new LinkedHashSet<>(packages));
        commands = List.copyOf(commands);
    }

    public static List<String> builtinNames() {
        return List.of("base", "python", "node");
    }

    public static Optional<ImageSpec> builtin(String name) {
        return Optional.ofNullable(BUILTIN.get(name));
    }

    /** A user image: a built-in to start from plus packages and commands. */
    public static ImageSpec derived(String name, String from, List<String> packages, List<String> commands) {
        ImageSpec parent = builtin(from)
                .orElseThrow(() -> new ImageException("unknown base image '" + from + "' in [image].from: use one of "
                        + String.join(", ", builtinNames())));
        List<String> cmds = new ArrayList<>(parent.commands());
        cmds.addAll(commands);
        return extend(name, parent.packages(), packages, cmds);
    }

    private static ImageSpec extend(String name, List<String> base, List<String> extra, List<String> commands) {
        List<String> all = new ArrayList<>(base);
        all.addAll(extra);
        return new ImageSpec(name, SUITE, all, commands);
    }

    /** The canonical text the recipe key is the hash of. The name is not part of it. */
    String canonical() {
        return "suite=" + suite + "\npackages="
                + String.join(",", packages.stream().sorted().toList()) + "\ncommands="
                + String.join("\u0000", commands) + "\nbuilder=" + RootfsBuilder.VERSION + "\n";
    }
}
