package dev.airlock.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Set;

/**
 * A secret a network listener checks on every request (a bearer token, an API key): made at
 * first start with 256 random bits, kept in a file only this user can read (0600, in a 0700
 * directory), and read back on later starts. A file that others can read is refused, since
 * the secret is then no longer one.
 */
public final class TokenFile {
    private static final SecureRandom RANDOM = new SecureRandom();

    private TokenFile() {}

    /** The token in {@code file}, made first if the file does not exist; {@code prefix} starts a new one. */
    public static String readOrCreate(Path file, String prefix) {
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) {
            AirlockDirs.ensurePrivateDir(dir);
        }
        try {
            if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
                byte[] bits = new byte[32];
                RANDOM.nextBytes(bits);
                HostFiles.writeAtomically(
                        file, (prefix + HexFormat.of().formatHex(bits) + "\n").getBytes(StandardCharsets.UTF_8));
            }
            return read(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the token in " + file, e);
        }
    }

    /** A token someone else made, e.g. with {@code --token-file}: the same checks. */
    public static String read(Path file) throws IOException {
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(file + " is not a regular file");
        }
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS);
        if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
            throw new IOException(file + " can be read by other users: chmod 600 it (and replace the token in it)");
        }
        String token = Files.readString(file, StandardCharsets.UTF_8).strip();
        if (token.length() < 16) {
            throw new IOException(file + " holds no token of at least 16 characters");
        }
        return token;
    }

    /** Compares in time independent of where they differ. */
    public static boolean matches(String expected, @org.jspecify.annotations.Nullable String given) {
        if (given == null) {
            return false;
        }
        return MessageDigest.isEqual(expected.getBytes(StandardCharsets.UTF_8), given.getBytes(StandardCharsets.UTF_8));
    }
}
