package dev.airlock.container;

import dev.airlock.host.HostCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The host's mount table (this process's mount namespace) and the mount commands we need. */
final class Mounts {
    /** One line of /proc/self/mountinfo. */
    record Entry(Path mountPoint, String type, String source, String superOptions) {}

    private Mounts() {}

    static List<Entry> list() {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/mountinfo"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Entry> out = new ArrayList<>();
        for (String line : lines) {
            String[] f = line.split(" ");
            int dash = List.of(f).indexOf("-");
            if (dash < 0 || f.length < dash + 4) {
                continue;
            }
            out.add(new Entry(Path.of(unescape(f[4])), f[dash + 1], unescape(f[dash + 2]), f[dash + 3]));
        }
        return out;
    }

    static boolean isMountPoint(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        return list().stream().anyMatch(e -> e.mountPoint().equals(abs));
    }

    /** Mount points at or below {@code dir}. */
    static List<Path> under(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        return list().stream()
                .map(Entry::mountPoint)
                .filter(p -> p.startsWith(abs))
                .toList();
    }

    static void mount(String type, String source, Path target, String options) {
        run(List.of("mount", "-t", type, "-o", options, source, target.toString()));
    }

    /** Unmounts if mounted; a busy mount is detached lazily rather than left behind. */
    static void unmount(Path target) {
        if (!isMountPoint(target)) {
            return;
        }
        HostCommand.Result r = HostCommand.run(List.of("umount", target.toString()), null, null);
        if (!r.ok() && isMountPoint(target)) {
            run(List.of("umount", "-l", target.toString()));
        }
    }

    private static void run(List<String> argv) {
        HostCommand.Result r = HostCommand.run(argv, null, null);
        if (!r.ok()) {
            throw new ContainerException(
                    String.join(" ", argv) + " failed: " + r.output().strip());
        }
    }

    /** mountinfo escapes space, tab, newline and backslash as octal. */
    private static String unescape(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
