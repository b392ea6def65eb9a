package dev.airlock.api;

import dev.airlock.guest.DirEntry;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import dev.airlock.host.CappedInputStream;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.service.GuestPath;
import dev.airlock.service.SandboxInfo;
import dev.airlock.wire.FileInfo;
import dev.airlock.wire.MakeDirRequest;
import dev.airlock.wire.MoveRequest;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.jspecify.annotations.Nullable;

/**
 * The file routes under {@code /v1/sandboxes/{ref}/files}: downloads and uploads streamed in
 * both directions (any size, never whole in memory), stat, list, mkdir, move and remove. Paths
 * are absolute paths inside the sandbox ({@link GuestPath}). An upload replaces its target
 * atomically (the agent writes a temporary file beside it and renames it at the end), so one cut
 * short, refused or beyond the sandbox's disk leaves the old file (or none) and no debris.
 */
final class FileRoutes {
    private FileRoutes() {}

    /** {@code GET .../files?path=}: the file's bytes, streamed; nothing is committed until the first ones. */
    static @Nullable Object download(HttpApi api, HttpApi.Call c) throws IOException {
        String path = GuestPath.check(c.query("path"));
        FileStat st = api.service().stat(c.ref(), path);
        if (st.type() == FileType.DIRECTORY) {
            throw new SandboxException(path + " is a directory: list it with GET .../files/list?path=" + path);
        }
        String name = path.substring(path.lastIndexOf('/') + 1).replaceAll("[^A-Za-z0-9._-]", "_");
        LazyBody body = new LazyBody(c, name);
        api.service().readFile(c.ref(), path, body);
        body.close();
        return null;
    }

    /**
     * {@code PUT .../files?path=&mode=&mkdirs=}: the body is the file. An upload larger than the
     * sandbox's disk is refused (413) before a byte is read when its length is declared, and cut
     * off when it is not.
     */
    static Object upload(HttpApi api, HttpApi.Call c) throws IOException {
        String path = GuestPath.check(c.query("path"));
        int mode = mode(c.query("mode"));
        boolean mkdirs = c.flag("mkdirs");
        SandboxInfo sandbox = api.service().inspect(c.ref());
        long limit = sandbox.resources().diskMiB() << 20;
        long declared = c.request.getLength();
        if (declared > limit) {
            throw tooLarge(declared, limit, sandbox.name());
        }
        // past the limit the read fails, an IOException, which cancels the guest's write
        InputStream in = new CappedInputStream(
                Content.Source.asInputStream(c.request), limit, "the upload is larger than the sandbox's disk");
        try {
            api.service().writeFile(c.ref(), path, in, mode, mkdirs);
        } catch (IOException e) {
            if (CappedInputStream.limitPassed(e)) {
                throw tooLarge(-1, limit, sandbox.name());
            }
            throw e;
        }
        c.status = 201;
        return FileInfo.of(path, api.service().stat(c.ref(), path));
    }

    private static SandboxException tooLarge(long size, long limit, String sandbox) {
        return new SandboxException(
                SandboxException.Kind.TOO_LARGE,
                "the upload" + (size >= 0 ? " (" + size + " bytes)" : "") + " is larger than the "
                        + (limit >> 20) + " MiB disk of sandbox '" + sandbox
                        + "'; nothing was written (create the sandbox with a larger diskMiB)");
    }

    static Object stat(HttpApi api, HttpApi.Call c) throws IOException {
        String path = GuestPath.check(c.query("path"));
        return FileInfo.of(path, api.service().stat(c.ref(), path));
    }

    static Object list(HttpApi api, HttpApi.Call c) throws IOException {
        String path = GuestPath.check(c.query("path"));
        List<FileInfo> out = new ArrayList<>();
        for (DirEntry e : api.service().listDir(c.ref(), path)) {
            out.add(FileInfo.of(path.equals("/") ? "/" + e.name() : path + "/" + e.name(), e.stat()));
        }
        return out;
    }

    static Object mkdir(HttpApi api, HttpApi.Call c) throws IOException {
        MakeDirRequest r = c.body(MakeDirRequest.class);
        String path = GuestPath.check(r.path());
        api.service().makeDir(c.ref(), path, Boolean.TRUE.equals(r.parents()));
        c.status = 201;
        return FileInfo.of(path, api.service().stat(c.ref(), path));
    }

    static Object move(HttpApi api, HttpApi.Call c) throws IOException {
        MoveRequest r = c.body(MoveRequest.class);
        String to = GuestPath.check(r.to());
        api.service().move(c.ref(), GuestPath.check(r.from()), to);
        return FileInfo.of(to, api.service().stat(c.ref(), to));
    }

    /** {@code DELETE .../files?path=&recursive=}: 204 when it is gone. */
    static @Nullable Object remove(HttpApi api, HttpApi.Call c) throws IOException {
        api.service().removePath(c.ref(), GuestPath.check(c.query("path")), c.flag("recursive"));
        c.noContent();
        return null;
    }

    private static int mode(@Nullable String text) {
        if (text == null) {
            return 0644;
        }
        try {
            int m = Integer.parseInt(text, 8);
            if (m >= 0 && m <= 07777) {
                return m;
            }
        } catch (NumberFormatException e) {
            // said below
        }
        throw new SandboxException("mode='" + text + "' is not octal permission bits such as 644 or 0755");
    }

    /** The download's body: the answer is committed (200) on the first byte, so an early error is still an answer. */
    private static final class LazyBody extends OutputStream {
        private final HttpApi.Call call;
        private final String name;
        private @Nullable OutputStream out;

        LazyBody(HttpApi.Call call, String name) {
            this.call = call;
            this.name = name;
        }

        private OutputStream open() {
            OutputStream o = out;
            if (o == null) {
                call.response.getHeaders().put(HttpHeader.CONTENT_DISPOSITION, "attachment; filename=\"" + name + "\"");
                o = call.stream(200, "application/octet-stream");
                out = o;
            }
            return o;
        }

        @Override
        public void write(int b) throws IOException {
            open().write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            open().write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            open().close();
        }
    }
}
