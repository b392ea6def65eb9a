package dev.airlock.cli;

import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;

import dev.airlock.archive.GuestDirectoryCopy;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import dev.airlock.host.BoundedBuffer;
import dev.airlock.net.UntrustedText;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.SandboxService;
import dev.airlock.service.SandboxSession;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Optional;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * {@code airlock cp}: single files go through the agent's file frames (byte-exact, atomic on the
 * guest side); directories are streamed as one tar archive through an exec of the guest's tar,
 * never file by file.
 */
final class Copy {
    private final SandboxService client;

    Copy(SandboxService client) {
        this.client = client;
    }

    record Location(@Nullable String sandbox, String path) {
        static Location parse(String s) {
            int colon = s.indexOf(':');
            if (colon > 0 && !s.startsWith("/") && !s.startsWith(".")) {
                String path = s.substring(colon + 1);
                if (!path.startsWith("/")) {
                    throw new SandboxException(
                            "sandbox path '" + path + "' must be absolute, e.g. " + s.substring(0, colon) + ":/tmp/x");
                }
                return new Location(s.substring(0, colon), path);
            }
            return new Location(null, s);
        }
    }

    void copy(String from, String to) throws IOException, InterruptedException {
        Location src = Location.parse(from);
        Location dst = Location.parse(to);
        if ((src.sandbox() == null) == (dst.sandbox() == null)) {
            throw new SandboxException(
                    "cp copies between the host and a sandbox: exactly one of SRC and DST must be NAME:PATH");
        }
        if (src.sandbox() == null) {
            try (SandboxSession session = client.session(String.valueOf(dst.sandbox()))) {
                toGuest(session.channel(), Path.of(src.path()), dst.path());
            }
        } else {
            try (SandboxSession session = client.session(String.valueOf(src.sandbox()))) {
                fromGuest(session.channel(), src.path(), Path.of(dst.path()));
            }
        }
    }

    private static void toGuest(GuestChannel ch, Path src, String dst) throws IOException, InterruptedException {
        if (!Files.exists(src)) {
            throw new SandboxException("no such file or directory on the host: " + src);
        }
        Optional<FileStat> target = stat(ch, dst);
        boolean intoDir = target.isPresent() && target.get().type() == FileType.DIRECTORY;
        Path absolute = src.toAbsolutePath().normalize();
        Path parentDir = absolute.getParent();
        Path fileName = absolute.getFileName();
        if (parentDir == null || fileName == null) {
            throw new SandboxException("cannot copy the host's root directory; name a directory below it");
        }
        String name = fileName.toString();
        if (Files.isDirectory(src)) {
            String script =
                    intoDir ? "tar -xf - -C \"$1\"" : "mkdir -p \"$1\" && tar -xf - -C \"$1\" --strip-components=1";
            Process tar = new ProcessBuilder("tar", "-cf", "-", "-C", parentDir.toString(), name)
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            // as root, as docker cp writes, whatever the sandbox's default user
            ExecSpec spec = ExecSpec.builder("/bin/sh", "-c", script, "sh", dst)
                    .stdin(true)
                    .user("0")
                    .build();
            // The guest's tar may say anything on stderr: only a message's worth is kept.
            BoundedBuffer err = new BoundedBuffer(4096);
            Execution ex = ch.exec(spec, OutputStream.nullOutputStream(), err);
            try (InputStream in = tar.getInputStream();
                    OutputStream stdin = ex.stdin()) {
                in.transferTo(stdin);
            }
            check(ex.await(), tar.waitFor(), err);
        } else {
            String path = intoDir ? dst.replaceAll("/+$", "") + "/" + name : dst;
            int mode = modeOf(src);
            try (InputStream in = Files.newInputStream(src)) {
                ch.writeFile(path, in, mode, false);
            }
        }
    }

    private static void fromGuest(GuestChannel ch, String src, Path dst) throws IOException, InterruptedException {
        FileStat st = stat(ch, src)
                .orElseThrow(() -> new SandboxException("no such file or directory in the sandbox: " + src));
        boolean intoDir = Files.isDirectory(dst);
        String trimmed = src.replaceAll("/+$", "");
        String name = trimmed.substring(trimmed.lastIndexOf('/') + 1);
        if (st.type() == FileType.DIRECTORY) {
            // The guest's tar stream is unpacked on the host by Airlock itself, never by the host's tar.
            GuestDirectoryCopy.copy(ch, trimmed, intoDir ? dst.resolve(name) : dst);
        } else {
            Path file = intoDir ? dst.resolve(name) : dst;
            // Into a directory, never write through a symlink already there (an earlier copy may have made it).
            if (intoDir && Files.isSymbolicLink(file)) {
                throw new SandboxException(file + " is a symlink; cp does not write through it: remove it first");
            }
            // A destination named as such that is a symlink is written through, to its target.
            Path target = !intoDir && Files.isSymbolicLink(file) ? linkTarget(file) : file;
            replaceWith(target, st, out -> ch.readFile(src, out));
        }
    }

    private interface Fill {
        void into(OutputStream out) throws IOException, InterruptedException;
    }

    /**
     * Writes the file beside {@code target} and renames it over it once whole: a copy that fails
     * part way (the guest's read fails, the sandbox or the session goes) leaves the host's file as
     * it was, where writing in place had already emptied it. An existing file keeps its
     * permissions; a new one gets the source's, without set-id bits (as {@code docker cp} gives
     * the source's).
     */
    private static void replaceWith(Path target, FileStat source, Fill fill) throws IOException, InterruptedException {
        Path dir = target.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new SandboxException("no such file or directory: " + target);
        }
        Set<PosixFilePermission> mode = Files.isRegularFile(target)
                ? Files.getPosixFilePermissions(target)
                : permissions(source.permissions() & 0777);
        Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".airlock-cp");
        boolean done = false;
        try {
            try (OutputStream out = Files.newOutputStream(tmp, LinkOption.NOFOLLOW_LINKS, TRUNCATE_EXISTING, WRITE)) {
                fill.into(out);
            }
            Files.setPosixFilePermissions(tmp, mode);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private static Path linkTarget(Path link) throws IOException {
        if (Files.exists(link)) {
            return link.toRealPath();
        }
        Path parent = link.toAbsolutePath().getParent();
        Path to = Files.readSymbolicLink(link);
        return parent == null ? to : parent.resolve(to); // dangling: the file it names is made
    }

    private static Set<PosixFilePermission> permissions(int bits) {
        Set<PosixFilePermission> out = java.util.EnumSet.noneOf(PosixFilePermission.class);
        for (PosixFilePermission perm : PosixFilePermission.values()) {
            if ((bits & (1 << (8 - perm.ordinal()))) != 0) {
                out.add(perm);
            }
        }
        return out;
    }

    private static Optional<FileStat> stat(GuestChannel ch, String path) throws IOException, InterruptedException {
        try {
            return Optional.of(ch.stat(path));
        } catch (GuestException e) {
            if (e.errno() == 2) {
                return Optional.empty();
            }
            throw e;
        }
    }

    private static void check(ExitStatus guest, int host, BoundedBuffer err) {
        if (guest.shellStatus() != 0 || host != 0) {
            throw new SandboxException("copy failed (guest tar exit " + guest.shellStatus() + ", host tar exit " + host
                    + "): " + UntrustedText.forTerminal(err.text().strip()));
        }
    }

    private static int modeOf(Path p) throws IOException {
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(p);
        int mode = 0;
        for (PosixFilePermission perm : perms) {
            mode |= 1 << (8 - perm.ordinal());
        }
        return mode;
    }
}
