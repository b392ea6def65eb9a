package dev.airlock.e2b;

import dev.airlock.guest.FileStat;
import dev.airlock.guest.FileType;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.CappedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.MultiPart;
import org.eclipse.jetty.http.MultiPartConfig;
import org.eclipse.jetty.http.MultiPartFormData;
import org.eclipse.jetty.io.Content;
import tools.jackson.databind.node.ObjectNode;

/**
 * envd's {@code /files}: GET streams a file out of the sandbox; POST writes one or more files,
 * as {@code multipart/form-data} (each part named {@code file}, its filename the path when the
 * {@code path} parameter is absent) or as a raw {@code application/octet-stream} body. Every
 * upload is capped ({@code --max-upload}); each file is written whole or not at all, so an
 * upload that is too large or cut short leaves the old file (or none) in place.
 */
final class EnvdFiles {
    private final E2bSandboxes sandboxes;
    private final long maxUpload;
    private final Path spool;

    EnvdFiles(E2bSandboxes sandboxes, long maxUpload, Path runtimeDir) {
        this.sandboxes = sandboxes;
        this.maxUpload = maxUpload;
        this.spool = runtimeDir.resolve("e2b-uploads");
    }

    void handle(Exchange ex, E2bSandbox sandbox) throws IOException, InterruptedException {
        E2bUser user = E2bUser.named(ex.query("username"));
        switch (ex.method()) {
            case "GET" -> download(ex, sandbox, user);
            case "POST" -> upload(ex, sandbox, user);
            default -> throw new E2bException(405, "/files takes GET or POST");
        }
    }

    private GuestChannel channel(E2bSandbox sandbox) throws IOException {
        return sandboxes.session(sandbox.sandboxId()).channel();
    }

    private void download(Exchange ex, E2bSandbox sandbox, E2bUser user) throws IOException, InterruptedException {
        String path = user.resolve(ex.query("path"));
        GuestChannel ch = channel(sandbox);
        FileStat stat;
        try {
            stat = ch.stat(path);
        } catch (GuestException e) {
            if (e.errno() == GuestException.ENOENT) {
                throw E2bException.notFound("path '" + path + "' does not exist");
            }
            throw e;
        }
        if (stat.type() == FileType.DIRECTORY) {
            throw E2bException.badRequest("path '" + path + "' is a directory");
        }
        ex.response
                .getHeaders()
                .put(
                        HttpHeader.CONTENT_DISPOSITION,
                        "attachment; filename=\""
                                + path.substring(path.lastIndexOf('/') + 1).replace("\"", "") + "\"");
        if (stat.type() == FileType.FILE) {
            ex.response.getHeaders().put(HttpHeader.CONTENT_LENGTH, stat.size());
        }
        OutputStream out = ex.stream(200, "application/octet-stream");
        try {
            ch.readFile(path, out);
            out.close();
        } catch (IOException | RuntimeException e) {
            // Committed already: the client sees the body end early (and the length not met).
            ex.complete(e);
        }
    }

    private void upload(Exchange ex, E2bSandbox sandbox, E2bUser user) throws IOException, InterruptedException {
        String contentType = ex.header("Content-Type");
        String type = contentType == null ? "" : contentType.toLowerCase(Locale.ROOT);
        String pathParam = ex.query("path");
        GuestChannel ch = channel(sandbox);
        List<ObjectNode> written = new ArrayList<>();
        if (type.startsWith("multipart/form-data")) {
            AirlockDirs.ensurePrivateDir(spool);
            MultiPartConfig config = new MultiPartConfig.Builder()
                    .location(spool)
                    .maxParts(1000)
                    .maxPartSize(maxUpload)
                    .maxSize(maxUpload)
                    .maxMemoryPartSize(1 << 20)
                    .build();
            MultiPartFormData.Parts parts;
            try {
                parts = MultiPartFormData.getParts(ex.request, ex.request, contentType, config);
            } catch (RuntimeException e) {
                throw tooLargeOrMalformed(e);
            }
            try (parts) {
                for (MultiPart.Part part : parts) {
                    if (!"file".equals(part.getName())) {
                        continue;
                    }
                    String name = pathParam != null && !pathParam.isEmpty() ? pathParam : part.getFileName();
                    if (name == null || name.isEmpty()) {
                        throw E2bException.badRequest("a file part has no filename and no path parameter was given");
                    }
                    String path = user.resolve(name);
                    try (InputStream in = Content.Source.asInputStream(part.createContentSource())) {
                        GuestFiles.write(ch, user, path, in);
                    }
                    written.add(writeInfo(path));
                }
            }
            if (written.isEmpty()) {
                throw E2bException.badRequest("the multipart body has no part named 'file'");
            }
        } else if (type.startsWith("application/octet-stream")) {
            if (pathParam == null || pathParam.isEmpty()) {
                throw E2bException.badRequest("an octet-stream upload needs the path parameter");
            }
            if ("gzip".equalsIgnoreCase(ex.header("Content-Encoding"))) {
                throw new E2bException(415, "gzip-encoded uploads are not supported: send the bytes as they are");
            }
            String path = user.resolve(pathParam);
            try (InputStream in = new CappedInputStream(
                    ex.body(), maxUpload, "the upload is larger than the limit of " + maxUpload + " bytes")) {
                GuestFiles.write(ch, user, path, in);
            } catch (IOException e) {
                if (CappedInputStream.limitPassed(e)) {
                    throw new E2bException(
                            413, "the upload is larger than the limit of " + maxUpload + " bytes; nothing was written");
                }
                throw e;
            }
            written.add(writeInfo(path));
        } else {
            throw new E2bException(
                    415, "POST /files takes multipart/form-data or application/octet-stream, not " + contentType);
        }
        ex.json(200, written);
    }

    private E2bException tooLargeOrMalformed(RuntimeException e) {
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        String message = String.valueOf(cause.getMessage());
        if (message.toLowerCase(Locale.ROOT).contains("max")) {
            return new E2bException(
                    413, "the upload is larger than the limit of " + maxUpload + " bytes; nothing was written");
        }
        return E2bException.badRequest("the multipart body is malformed: " + message);
    }

    private static ObjectNode writeInfo(String path) {
        return ConnectRpc.object()
                .put("name", path.substring(path.lastIndexOf('/') + 1))
                .put("type", "file")
                .put("path", path);
    }
}
