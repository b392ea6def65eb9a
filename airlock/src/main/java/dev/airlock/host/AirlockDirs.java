package dev.airlock.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * Where Airlock keeps things on the host. Caches (kernel, images) are rebuildable and shared by
 * every checkout; data (sandbox disks and state) is the user's work and is never deleted
 * implicitly. Both follow the XDG base directory spec and can be overridden, which is how tests
 * get a private data directory while sharing the expensive cache.
 */
public record AirlockDirs(Path home, Path cache, Path data, Path runtime) {

    public static AirlockDirs fromEnvironment() {
        return from(System.getenv(), System.getProperty("airlock.home"));
    }

    static AirlockDirs from(Map<String, String> env, @Nullable String homeProperty) {
        String userHome = System.getProperty("user.home");
        Path cache = pick(env, "AIRLOCK_CACHE_DIR", "XDG_CACHE_HOME", Path.of(userHome, ".cache"));
        Path data = pick(env, "AIRLOCK_DATA_DIR", "XDG_DATA_HOME", Path.of(userHome, ".local", "share"));
        String home = homeProperty != null ? homeProperty : env.get("AIRLOCK_HOME");
        return new AirlockDirs(
                Path.of(home != null ? home : ".").toAbsolutePath().normalize(), cache, data, runtime(env));
    }

    /**
     * Sockets live here, not beside the sandbox's disk: a unix socket path may not exceed 107
     * bytes, and data directories (a test's temp dir, a long home) can be deeper than that.
     */
    private static Path runtime(Map<String, String> env) {
        String own = env.get("AIRLOCK_RUNTIME_DIR");
        if (own != null && !own.isBlank()) {
            return Path.of(own);
        }
        String xdg = env.get("XDG_RUNTIME_DIR");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "airlock");
        }
        return Path.of("/tmp", "airlock-" + System.getProperty("user.name"));
    }

    private static Path pick(Map<String, String> env, String own, String xdg, Path fallback) {
        String value = env.get(own);
        if (value != null && !value.isBlank()) {
            return Path.of(value).toAbsolutePath();
        }
        String base = env.get(xdg);
        return (base != null && !base.isBlank() ? Path.of(base) : fallback)
                .resolve("airlock")
                .toAbsolutePath();
    }

    /** The source tree's file, e.g. {@code guest/kernel/airlock.config}. */
    public Path source(String relative) {
        return home.resolve(relative);
    }

    public Path kernels() {
        return cache.resolve("kernel");
    }

    public Path images() {
        return cache.resolve("images");
    }

    public Path guest() {
        return cache.resolve("guest");
    }

    public Path sandboxes() {
        return data.resolve("sandboxes");
    }

    /**
     * A directory only this user may use: created 0700 when missing; when it exists it must be
     * a real directory (not a symlink), owned by this user, with no access for anyone else,
     * since another local user who made it first could otherwise swap the sockets in it for
     * their own. Refused with a clear error otherwise.
     */
    public static Path ensurePrivateDir(Path dir) {
        try {
            Path parent = dir.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            try {
                Files.createDirectory(
                        dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException e) {
                // Checked below, whoever made it.
            }
            checkPrivate(dir);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create directory " + dir, e);
        }
    }

    /**
     * {@link #ensurePrivateDir} for the data directory, which a user may have made a symlink to a
     * larger disk of theirs: then the directory it leads to is the one checked (and closed).
     */
    public static Path ensurePrivateDataDir(Path dir) {
        if (Files.isSymbolicLink(dir)) {
            try {
                ensurePrivateDir(dir.toRealPath());
                return dir;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot follow the data directory link " + dir, e);
            }
        }
        return ensurePrivateDir(dir);
    }

    /** Refuses a directory another user could have made or can write into. */
    public static void checkPrivate(Path dir) throws IOException {
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(dir + " is not a directory (a symlink or a file is there); remove it and retry");
        }
        int owner = (Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int me = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        if (owner != me) {
            throw new IOException(dir + " belongs to uid " + owner + ", not to this user (uid " + me
                    + "): another user may control it; remove it or point AIRLOCK_RUNTIME_DIR elsewhere");
        }
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        if (perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new IOException(dir + " is writable by other users (" + PosixFilePermissions.toString(perms)
                    + "): they may have put sockets there; remove it and retry");
        }
        if (!PosixFilePermissions.toString(perms).endsWith("------")) {
            // Ours and never writable by others (an older Airlock made it 0755): nothing of
            // anyone else's can be in it, so closing it is enough.
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        }
    }

    /**
     * A directory of Airlock's own data (a sandbox's, a template's, a fork's): created 0700 with
     * any missing parents, or closed to 0700 when an older Airlock made it wider. Its files hold
     * guest disks, memory and logs, which no other local user may read. For directories inside
     * one already checked by {@link #ensurePrivateDir}, where nobody else can have put anything.
     */
    public static Path ensureOwnerOnlyDir(Path dir) {
        try {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
            if (!Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS).equals(OWNER_ONLY)) {
                Files.setPosixFilePermissions(dir, OWNER_ONLY);
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create directory " + dir, e);
        }
    }

    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rwx------");

    public static Path ensureDir(Path dir) {
        try {
            return Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create directory " + dir, e);
        }
    }
}
