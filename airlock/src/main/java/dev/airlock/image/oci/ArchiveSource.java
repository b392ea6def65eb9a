package dev.airlock.image.oci;

import dev.airlock.image.ImageException;
import dev.airlock.image.layer.TarEntry;
import dev.airlock.image.layer.TarReader;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The files of an image archive, whether a directory or an uncompressed tar of one: read by name,
 * never outside the archive. A tar is indexed once (each member's offset) and read in place, so
 * a multi-gigabyte {@code docker save} is not copied first. Symlinks inside (docker save links
 * repeated layers) are followed only to members of the same archive.
 */
abstract sealed class ArchiveSource implements AutoCloseable {
    private static final int MAX_LINK_HOPS = 8;

    static ArchiveSource open(Path path) {
        if (Files.isDirectory(path)) {
            return new Directory(path);
        }
        if (!Files.isRegularFile(path)) {
            throw new ImageException("no such file or directory: " + path);
        }
        return Tar.index(path);
    }

    /** Whether the archive has the regular file {@code name}. */
    abstract boolean has(String name);

    abstract long size(String name) throws IOException;

    abstract InputStream open(String name) throws IOException;

    byte[] read(String name, int maxBytes) {
        try {
            if (size(name) > maxBytes) {
                throw new ImageException(name + " in the archive is larger than " + (maxBytes >> 20) + " MiB");
            }
            try (InputStream in = open(name)) {
                return in.readNBytes(maxBytes);
            }
        } catch (IOException e) {
            throw new ImageException("cannot read " + name + " from the archive: " + e.getMessage());
        }
    }

    @Override
    public void close() {}

    static String clean(String name) {
        String n = name;
        while (n.startsWith("./")) {
            n = n.substring(2);
        }
        while (n.startsWith("/")) {
            n = n.substring(1);
        }
        return n;
    }

    /** A directory: names resolve inside it, symlinks too. */
    static final class Directory extends ArchiveSource {
        private final Path root;

        Directory(Path root) {
            try {
                this.root = root.toRealPath();
            } catch (IOException e) {
                throw new ImageException("cannot open " + root + ": " + e.getMessage());
            }
        }

        private Optional<Path> resolve(String name) {
            Path p = root.resolve(clean(name)).normalize();
            try {
                Path real = p.toRealPath();
                if (!real.startsWith(root) || !Files.isRegularFile(real, LinkOption.NOFOLLOW_LINKS)) {
                    return Optional.empty();
                }
                return Optional.of(real);
            } catch (IOException e) {
                return Optional.empty();
            }
        }

        @Override
        boolean has(String name) {
            return resolve(name).isPresent();
        }

        @Override
        long size(String name) throws IOException {
            return Files.size(resolve(name).orElseThrow(() -> new IOException("no " + name + " in " + root)));
        }

        @Override
        InputStream open(String name) throws IOException {
            return Files.newInputStream(resolve(name).orElseThrow(() -> new IOException("no " + name + " in " + root)));
        }
    }

    /** An uncompressed tar: member name -> where its content starts, read through a positioned channel. */
    static final class Tar extends ArchiveSource {
        private record Member(long offset, long size, String linkTarget) {}

        private final Path file;
        private final Map<String, Member> members;

        private Tar(Path file, Map<String, Member> members) {
            this.file = file;
            this.members = members;
        }

        static Tar index(Path file) {
            Map<String, Member> members = new HashMap<>();
            try (FileChannel ch = FileChannel.open(file)) {
                CountingInput counting =
                        new CountingInput(new BufferedInputStream(Channels.newInputStream(ch), 1 << 16));
                byte[] magic = counting.peek(4);
                if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
                    throw new ImageException(file + " is gzip-compressed; decompress it first (gunzip), then import");
                }
                TarReader r = new TarReader(counting);
                for (TarEntry e; (e = r.next()) != null; ) {
                    String name = clean(e.name());
                    if (e.type() == TarEntry.Type.FILE) {
                        members.put(name, new Member(counting.count(), e.size(), ""));
                    } else if (e.type() == TarEntry.Type.SYMLINK || e.type() == TarEntry.Type.HARDLINK) {
                        String target =
                                e.type() == TarEntry.Type.HARDLINK ? clean(e.linkName()) : relative(name, e.linkName());
                        members.put(name, new Member(-1, 0, target));
                    }
                    if (members.size() > 1_000_000) {
                        throw new ImageException(file + " has more than a million members; not an image archive");
                    }
                }
            } catch (TarReader.TarFormatException e) {
                throw new ImageException(
                        file + " is not an image layout or a docker/podman save archive (a tar): " + e.getMessage());
            } catch (IOException e) {
                throw new ImageException("cannot read " + file + ": " + e.getMessage());
            }
            return new Tar(file, members);
        }

        private static String relative(String from, String link) {
            if (link.startsWith("/")) {
                return clean(link);
            }
            int slash = from.lastIndexOf('/');
            String dir = slash < 0 ? "" : from.substring(0, slash);
            java.util.Deque<String> parts = new java.util.ArrayDeque<>();
            for (String p : (dir.isEmpty() ? link : dir + "/" + link).split("/")) {
                if (p.isEmpty() || p.equals(".")) {
                    continue;
                }
                if (p.equals("..")) {
                    parts.pollLast();
                } else {
                    parts.addLast(p);
                }
            }
            return String.join("/", parts);
        }

        private Optional<Member> member(String name) {
            String n = clean(name);
            for (int hop = 0; hop < MAX_LINK_HOPS; hop++) {
                Member m = members.get(n);
                if (m == null) {
                    return Optional.empty();
                }
                if (m.offset() >= 0) {
                    return Optional.of(m);
                }
                n = m.linkTarget();
            }
            return Optional.empty();
        }

        @Override
        boolean has(String name) {
            return member(name).isPresent();
        }

        @Override
        long size(String name) throws IOException {
            return member(name)
                    .orElseThrow(() -> new IOException("no " + name + " in " + file))
                    .size();
        }

        @Override
        InputStream open(String name) throws IOException {
            Member m = member(name).orElseThrow(() -> new IOException("no " + name + " in " + file));
            FileChannel ch = FileChannel.open(file);
            ch.position(m.offset());
            InputStream all = Channels.newInputStream(ch);
            return new InputStream() {
                long left = m.size();

                @Override
                public int read() throws IOException {
                    if (left <= 0) {
                        return -1;
                    }
                    int b = all.read();
                    if (b >= 0) {
                        left--;
                    }
                    return b;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    if (left <= 0) {
                        return -1;
                    }
                    int n = all.read(b, off, (int) Math.min(len, left));
                    if (n > 0) {
                        left -= n;
                    }
                    return n;
                }

                @Override
                public void close() throws IOException {
                    ch.close();
                }
            };
        }
    }

    /** Counts the bytes read through it, so a tar member's content offset is known. */
    private static final class CountingInput extends InputStream {
        private final BufferedInputStream in;
        private long count;

        CountingInput(BufferedInputStream in) {
            this.in = in;
        }

        long count() {
            return count;
        }

        byte[] peek(int n) throws IOException {
            in.mark(n);
            byte[] b = in.readNBytes(n);
            in.reset();
            return b;
        }

        @Override
        public int read() throws IOException {
            int b = in.read();
            if (b >= 0) {
                count++;
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            if (n > 0) {
                count += n;
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long s = in.skip(n);
            if (s > 0) {
                count += s;
            }
            return s;
        }
    }
}
