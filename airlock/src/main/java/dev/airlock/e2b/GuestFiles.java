package dev.airlock.e2b;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import dev.airlock.host.CappedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.format.DateTimeFormatter;
import java.util.List;
import tools.jackson.databind.node.ObjectNode;

/**
 * File operations on a guest in E2B's shape. Reads, stats and listings use the agent's own file
 * requests; operations that create or change names (make a directory, move, remove) run as the
 * requesting user, so ownership and permissions come out as they would in E2B, and a written
 * file is handed to that user after the agent's atomic write.
 */
final class GuestFiles {
    private static final Duration COMMAND_LIMIT = Duration.ofMinutes(5);
    private static final int MAX_ERROR_TEXT = 4096;

    private GuestFiles() {}

    /** Runs a small tool in the guest as {@code user}; a non-zero exit is an error with its stderr. */
    static void run(GuestChannel channel, E2bUser user, List<String> argv, String what)
            throws IOException, InterruptedException {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        OutputStream capped = new OutputStream() {
            @Override
            public void write(int b) {
                if (err.size() < MAX_ERROR_TEXT) {
                    err.write(b);
                }
            }

            @Override
            public void write(byte[] b, int off, int len) {
                err.write(b, off, Math.max(0, Math.min(len, MAX_ERROR_TEXT - err.size())));
            }
        };
        Execution ex = channel.exec(
                ExecSpec.builder(argv)
                        .env(user.env())
                        .user(user.guestUser())
                        .cwd("/")
                        .timeout(COMMAND_LIMIT)
                        .build(),
                OutputStream.nullOutputStream(),
                capped);
        ExitStatus status = ex.await();
        if (status.shellStatus() != 0) {
            String text = err.toString(StandardCharsets.UTF_8).strip();
            int code = text.contains("Permission denied") || text.contains("Operation not permitted")
                    ? 403
                    : text.contains("No such file") ? 404 : text.contains("No space left") ? 507 : 400;
            throw new E2bException(code, what + " failed" + (text.isEmpty() ? "" : ": " + text));
        }
    }

    /** Creates the parent directories of {@code path} as the user, unless the parent exists. */
    static void ensureParent(GuestChannel channel, E2bUser user, String path) throws IOException, InterruptedException {
        int slash = path.lastIndexOf('/');
        String parent = slash <= 0 ? "/" : path.substring(0, slash);
        try {
            FileStat s = channel.stat(parent);
            if (s.type() != FileType.DIRECTORY) {
                throw E2bException.badRequest(parent + " is not a directory");
            }
        } catch (GuestException e) {
            if (e.errno() != GuestException.ENOENT) {
                throw e;
            }
            run(channel, user, List.of("mkdir", "-p", "--", parent), "creating " + parent);
        }
    }

    /** Writes a file through the agent (whole or not at all), then gives it to the user. */
    static long write(GuestChannel channel, E2bUser user, String path, java.io.InputStream in)
            throws IOException, InterruptedException {
        ensureParent(channel, user, path);
        long size = channel.writeFile(path, in, 0644, false);
        if (user.guestUser() != null) {
            run(
                    channel,
                    E2bUser.ROOT,
                    List.of("chown", "-h", user.guestUser(), "--", path),
                    "handing " + path + " to " + user.name());
        }
        return size;
    }

    /** Reads a file through the agent, at most {@code limit} bytes. */
    static long read(GuestChannel channel, String path, OutputStream out, long limit)
            throws IOException, InterruptedException {
        return channel.readFile(path, new CappedOutputStream(out, limit, path));
    }

    static String typeName(FileType t) {
        return switch (t) {
            case FILE -> "FILE_TYPE_FILE";
            case DIRECTORY -> "FILE_TYPE_DIRECTORY";
            case SYMLINK -> "FILE_TYPE_SYMLINK";
            case OTHER -> "FILE_TYPE_UNSPECIFIED";
        };
    }

    /** envd's {@code EntryInfo} of a path. */
    static ObjectNode entry(String path, FileStat s) {
        ObjectNode e = ConnectRpc.object();
        int slash = path.lastIndexOf('/');
        e.put("name", path.equals("/") ? "/" : path.substring(slash + 1));
        e.put("type", typeName(s.type()));
        e.put("path", path);
        e.put("size", Long.toString(s.size()));
        long mode = s.permissions();
        if (s.type() == FileType.DIRECTORY) {
            mode |= 1L << 31;
        } else if (s.type() == FileType.SYMLINK) {
            mode |= 1L << 27;
        }
        e.put("mode", mode);
        e.put("permissions", permissions(s));
        e.put("owner", owner(s.uid().orElse(-1)));
        e.put("group", owner(s.gid().orElse(-1)));
        e.put("modifiedTime", DateTimeFormatter.ISO_INSTANT.format(s.modified()));
        if (s.linkTarget() != null) {
            e.put("symlinkTarget", s.linkTarget());
        }
        return e;
    }

    private static String owner(long id) {
        if (id == 0) {
            return "root";
        }
        if (id == E2bUser.USER_UID) {
            return "user";
        }
        return id < 0 ? "" : Long.toString(id);
    }

    /** Go's {@code FileMode.String()}, which envd reports. */
    static String permissions(FileStat s) {
        StringBuilder b = new StringBuilder();
        b.append(
                switch (s.type()) {
                    case DIRECTORY -> 'd';
                    case SYMLINK -> 'L';
                    default -> '-';
                });
        String rwx = "rwxrwxrwx";
        int p = s.permissions();
        for (int i = 0; i < 9; i++) {
            b.append((p & (1 << (8 - i))) != 0 ? rwx.charAt(i) : '-');
        }
        return b.toString();
    }
}
