package dev.airlock.build;

import dev.airlock.host.Hashing;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * The build context: the directory whose files COPY and ADD take, minus what its
 * {@code .dockerignore} leaves out. A source names a path below it (or a glob of paths); a
 * source that leads outside it, by {@code ..} or through a symlink, is refused. Inside a copied
 * directory, symlinks are copied as symlinks and never followed.
 */
final class BuildContext {
    private final Path root;
    private final DockerIgnore ignore;
    private @Nullable List<String> all;

    private BuildContext(Path root, DockerIgnore ignore) {
        this.root = root;
        this.ignore = ignore;
    }

    static BuildContext open(Path dir) {
        Path root;
        try {
            root = dir.toRealPath();
        } catch (IOException e) {
            throw new BuildException("the build context " + dir + " does not exist");
        }
        if (!Files.isDirectory(root)) {
            throw new BuildException("the build context " + dir + " is not a directory");
        }
        DockerIgnore ignore = DockerIgnore.NONE;
        Path di = root.resolve(".dockerignore");
        if (Files.isRegularFile(di, LinkOption.NOFOLLOW_LINKS)) {
            try {
                ignore = DockerIgnore.parse(Files.readString(di));
            } catch (IOException e) {
                throw new BuildException("cannot read " + di + ": " + e.getMessage());
            }
        }
        return new BuildContext(root, ignore);
    }

    Path root() {
        return root;
    }

    enum Kind {
        FILE,
        DIRECTORY,
        SYMLINK
    }

    /**
     * One file to copy: {@code name} is its path below the source ("" for the source itself),
     * {@code path} where it is on the host.
     */
    record File(String name, Path path, Kind kind, int mode, long size, long mtimeSeconds, String linkTarget) {}

    /** One source of a COPY or ADD: a file, or a directory whose contents are copied. */
    record Source(String rel, boolean directory, List<File> files) {}

    /** The sources a COPY or ADD argument names (a path or a glob), for errors named by {@code what}. */
    List<Source> sources(String word, String what) {
        String rel = relative(word, what);
        List<Source> out = new ArrayList<>();
        if (hasGlob(rel)) {
            Pattern p = Pattern.compile(DockerIgnore.regex(rel));
            for (String candidate : allPaths()) {
                if (p.matcher(candidate).matches()) {
                    out.add(source(candidate, what));
                }
            }
            if (out.isEmpty()) {
                throw new BuildException(what + ": no file in the build context matches " + word
                        + (ignore.hasExceptions() || !allPaths().isEmpty() ? " (or .dockerignore excludes it)" : ""));
            }
            return out;
        }
        out.add(source(rel, what));
        return out;
    }

    /** A hash of what the sources hold (names, types, modes, link targets, contents) for the cache key. */
    static String hash(List<Source> sources) {
        StringBuilder b = new StringBuilder();
        for (Source s : sources) {
            b.append("source ").append(s.rel()).append(s.directory() ? "/\n" : "\n");
            for (File f : s.files()) {
                b.append(f.name())
                        .append('\0')
                        .append(f.kind())
                        .append(' ')
                        .append(Integer.toOctalString(f.mode()))
                        .append(' ');
                switch (f.kind()) {
                    case FILE -> b.append(f.size()).append(' ').append(Hashing.sha256(f.path()));
                    case SYMLINK -> b.append(f.linkTarget());
                    case DIRECTORY -> {}
                }
                b.append('\n');
            }
        }
        return Hashing.sha256(b.toString());
    }

    /** A file's content, read without following a symlink that replaced it meanwhile. */
    static InputStream open(File f) throws IOException {
        return Files.newInputStream(f.path(), LinkOption.NOFOLLOW_LINKS);
    }

    /** The source word as a cleaned path below the context; refused when it climbs out. */
    private static String relative(String word, String what) {
        if (word.contains("://") || word.startsWith("git@")) {
            throw new BuildException(what + ": " + word + " is a URL; Airlock copies only from the build context."
                    + " Download it in a RUN step (with --allow-host HOST) or put it in the context");
        }
        List<String> parts = new ArrayList<>();
        for (String seg : word.split("/")) {
            if (seg.isEmpty() || seg.equals(".")) {
                continue;
            }
            if (seg.equals("..")) {
                if (parts.isEmpty()) {
                    throw new BuildException(what + ": " + word + " is outside the build context; only files"
                            + " inside the context directory can be copied");
                }
                parts.removeLast();
                continue;
            }
            parts.add(seg);
        }
        return String.join("/", parts);
    }

    private static boolean hasGlob(String rel) {
        return rel.indexOf('*') >= 0 || rel.indexOf('?') >= 0 || rel.indexOf('[') >= 0;
    }

    private Source source(String rel, String what) {
        if (!rel.isEmpty() && ignore.excluded(rel)) {
            throw new BuildException(what + ": " + rel + " is excluded by the build context's .dockerignore");
        }
        Path p = rel.isEmpty() ? root : root.resolve(rel);
        Path real;
        try {
            real = p.toRealPath();
        } catch (NoSuchFileException e) {
            throw new BuildException(what + ": " + rel + " does not exist in the build context " + root);
        } catch (IOException e) {
            throw new BuildException(what + ": cannot read " + rel + " in the build context: " + e.getMessage());
        }
        if (!real.startsWith(root)) {
            throw new BuildException(what + ": " + rel + " leads outside the build context (through a symlink, to "
                    + real + "); only files inside the context directory can be copied");
        }
        PosixFileAttributes a = attrs(real);
        if (a.isDirectory()) {
            List<File> files = new ArrayList<>();
            list(real, "", files);
            return new Source(rel, true, files);
        }
        if (!a.isRegularFile()) {
            throw new BuildException(what + ": " + rel + " is not a regular file or a directory");
        }
        return new Source(rel, false, List.of(file(real, "", a)));
    }

    /** The files below {@code dir} (not followed through symlinks), .dockerignore applied, parents first. */
    private void list(Path dir, String prefix, List<File> out) {
        List<Path> children;
        try (Stream<Path> s = Files.list(dir)) {
            children = s.sorted().toList();
        } catch (IOException e) {
            throw new BuildException("cannot read " + dir + " in the build context: " + e.getMessage());
        }
        for (Path c : children) {
            String name = prefix.isEmpty() ? c.getFileName().toString() : prefix + "/" + c.getFileName();
            String rel = root.relativize(c).toString();
            PosixFileAttributes a = attrs(c);
            boolean excluded = ignore.excluded(rel);
            if (excluded && !(a.isDirectory() && ignore.hasExceptions())) {
                continue;
            }
            if (!a.isDirectory() && !a.isRegularFile() && !a.isSymbolicLink()) {
                continue; // sockets, fifos and devices have no place in an image built from a context
            }
            if (!excluded) {
                out.add(file(c, name, a));
            }
            if (a.isDirectory()) {
                list(c, name, out);
            }
        }
    }

    private List<String> allPaths() {
        if (all == null) {
            List<File> files = new ArrayList<>();
            list(root, "", files);
            all = files.stream().map(File::name).toList();
        }
        return all;
    }

    private static PosixFileAttributes attrs(Path p) {
        try {
            return Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + p, e);
        }
    }

    private static File file(Path p, String name, PosixFileAttributes a) {
        int mode = modeBits(a.permissions());
        try {
            Object raw = Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            if (raw instanceof Integer m) {
                mode = m & 07777; // setuid, setgid and sticky too
            }
        } catch (IOException | UnsupportedOperationException e) {
            // the permission bits above
        }
        long mtime = a.lastModifiedTime().toInstant().getEpochSecond();
        if (a.isSymbolicLink()) {
            try {
                return new File(
                        name,
                        p,
                        Kind.SYMLINK,
                        0777,
                        0,
                        mtime,
                        Files.readSymbolicLink(p).toString());
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the symlink " + p, e);
            }
        }
        if (a.isDirectory()) {
            return new File(name, p, Kind.DIRECTORY, mode, 0, mtime, "");
        }
        return new File(name, p, Kind.FILE, mode, a.size(), mtime, "");
    }

    private static int modeBits(Set<PosixFilePermission> perms) {
        int m = 0;
        for (PosixFilePermission p : perms) {
            m |= 1 << (8 - p.ordinal());
        }
        return m;
    }
}
