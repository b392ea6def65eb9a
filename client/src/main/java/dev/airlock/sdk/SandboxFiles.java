package dev.airlock.sdk;

import dev.airlock.sdk.http.DaemonHttp;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import tools.jackson.core.type.TypeReference;

/**
 * A sandbox's files, by absolute path inside it. Transfers are streamed both ways, so a file of
 * any size passes without being held in memory; a write replaces its target atomically (readers
 * see the old file or the new one, and a write cut short leaves the old one).
 */
public final class SandboxFiles {
    private final Airlock airlock;
    private final String sandboxPath;

    SandboxFiles(Airlock airlock, String sandboxPath) {
        this.airlock = airlock;
        this.sandboxPath = sandboxPath;
    }

    /** Copies a file out of the sandbox into {@code out}; returns its size. Symlinks are followed. */
    public long read(String path, OutputStream out) {
        String what = "GET " + path;
        try (DaemonHttp.Response r = Airlock.checked(airlock.http().send("GET", files("", path), null, ""))) {
            long n = r.body().transferTo(out);
            out.flush();
            return n;
        } catch (IOException e) {
            throw airlock.unreachable(what, e);
        }
    }

    /** A file's bytes, streamed: read them and close the stream (it holds the connection). */
    public InputStream open(String path) {
        try {
            return Airlock.checked(airlock.http().send("GET", files("", path), null, ""))
                    .body();
        } catch (IOException e) {
            throw airlock.unreachable("GET " + path, e);
        }
    }

    public byte[] readBytes(String path) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        read(path, out);
        return out.toByteArray();
    }

    public String readString(String path) {
        return new String(readBytes(path), StandardCharsets.UTF_8);
    }

    /**
     * Writes {@code in} to a file (mode 0644), making missing parent directories; returns the
     * file as written.
     */
    public FileInfo write(String path, InputStream in) {
        return write(path, in, 0644);
    }

    /** Writes {@code in} to a file with these permission bits, making missing parent directories. */
    public FileInfo write(String path, InputStream in, int mode) {
        String target = files("", path) + "&mkdirs=true&mode=" + Integer.toOctalString(mode);
        try (DaemonHttp.Response r =
                Airlock.checked(airlock.http().upload("PUT", target, in, "application/octet-stream"))) {
            return Airlock.JSON.readValue(r.readAll(1 << 20), FileInfo.class);
        } catch (IOException e) {
            throw airlock.unreachable("PUT " + path, e);
        }
    }

    public FileInfo write(String path, byte[] bytes) {
        return write(path, new ByteArrayInputStream(bytes));
    }

    public FileInfo write(String path, String text) {
        return write(path, text.getBytes(StandardCharsets.UTF_8));
    }

    /** Uploads a host file. */
    public FileInfo upload(Path local, String path) {
        try (InputStream in = Files.newInputStream(local)) {
            return write(path, in);
        } catch (IOException e) {
            throw Airlock.unchecked(e);
        }
    }

    /** Downloads a file to the host (replacing {@code local}). */
    public long download(String path, Path local) {
        try (OutputStream out = Files.newOutputStream(local)) {
            return read(path, out);
        } catch (IOException e) {
            throw Airlock.unchecked(e);
        }
    }

    /** A path's metadata (a final symlink is not followed); {@code NOT_FOUND} when there is nothing. */
    public FileInfo stat(String path) {
        return airlock.call("GET", files("/stat", path), null, FileInfo.class);
    }

    public boolean exists(String path) {
        try {
            stat(path);
            return true;
        } catch (AirlockException e) {
            if (e.kind().equals("NOT_FOUND")) {
                return false;
            }
            throw e;
        }
    }

    /** A directory's entries, sorted by name. */
    public List<FileInfo> list(String path) {
        return airlock.call("GET", files("/list", path), null, new TypeReference<List<FileInfo>>() {});
    }

    /** Makes a directory; its parent must exist. */
    public FileInfo mkdir(String path) {
        return airlock.call(
                "POST", sandboxPath + "/files/mkdir", Map.of("path", path, "parents", false), FileInfo.class);
    }

    /** Makes a directory and its missing parents; one already there is fine. */
    public FileInfo mkdirs(String path) {
        return airlock.call(
                "POST", sandboxPath + "/files/mkdir", Map.of("path", path, "parents", true), FileInfo.class);
    }

    /** Renames a path within the sandbox (an existing file at {@code to} is replaced). */
    public FileInfo move(String from, String to) {
        return airlock.call("POST", sandboxPath + "/files/move", Map.of("from", from, "to", to), FileInfo.class);
    }

    /** Removes a file, a symlink or an empty directory. */
    public void remove(String path) {
        airlock.raw("DELETE", files("", path), null);
    }

    /** Removes a directory and everything in it (never following symlinks). */
    public void removeAll(String path) {
        airlock.raw("DELETE", files("", path) + "&recursive=true", null);
    }

    private String files(String what, String path) {
        return sandboxPath + "/files" + what + "?path=" + Airlock.encode(path);
    }
}
