package dev.airlock.daemon;

import dev.airlock.host.AirlockDirs;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Set;

/**
 * The bearer token of the daemon's TCP listeners: 32 random bytes (base64url), made the first
 * time a listener starts and kept in {@code <data>/api-token}, created 0600 in one step. A token
 * file that anyone but its user could read, or that another user owns or swapped for a symlink,
 * is refused in words rather than used, since whoever can read it controls every sandbox.
 */
public final class ApiToken {
    public static final String FILE = "api-token";

    private ApiToken() {}

    public static Path file(Path data) {
        return data.resolve(FILE);
    }

    /** The token, made now if there is none. */
    public static String loadOrCreate(Path data) {
        Path f = file(data);
        AirlockDirs.ensureDir(data);
        try {
            if (!Files.exists(f, LinkOption.NOFOLLOW_LINKS)) {
                byte[] raw = new byte[32];
                new SecureRandom().nextBytes(raw);
                String token = Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
                // Created 0600 in the same call, so the token is never readable by others, not even briefly.
                try (SeekableByteChannel ch = Files.newByteChannel(
                        f,
                        Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
                    ch.write(ByteBuffer.wrap((token + "\n").getBytes(StandardCharsets.US_ASCII)));
                } catch (FileAlreadyExistsException e) {
                    return read(f); // another daemon made it first
                }
                return read(f);
            }
            return read(f);
        } catch (IOException e) {
            throw SandboxException.failed("cannot read or make the API token " + f + ": " + e.getMessage());
        }
    }

    private static String read(Path f) throws IOException {
        if (Files.isSymbolicLink(f) || !Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
            throw SandboxException.conflict(
                    f + " is not a plain file; remove it and start again (a new token is made)");
        }
        int owner = (Integer) Files.getAttribute(f, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int me = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(f, LinkOption.NOFOLLOW_LINKS);
        if (owner != me) {
            throw SandboxException.conflict(
                    f + " belongs to uid " + owner + ", not to this user (uid " + me + "); remove it and start again");
        }
        if (perms.stream()
                .anyMatch(p -> p.name().startsWith("GROUP") || p.name().startsWith("OTHERS"))) {
            throw SandboxException.conflict(f + " is readable by others (" + PosixFilePermissions.toString(perms)
                    + "); the token may have leaked: remove the file (a new token is made) or chmod 600 it");
        }
        String token = Files.readString(f, StandardCharsets.US_ASCII).strip();
        if (token.length() < 32) {
            throw SandboxException.conflict(f + " holds no usable token (at least 32 characters); remove it");
        }
        return token;
    }
}
