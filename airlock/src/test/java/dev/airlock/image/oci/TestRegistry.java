package dev.airlock.image.oci;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Debian's {@code docker-registry} (the CNCF distribution registry) on a free loopback port, with
 * its own config and storage in a directory the test owns. Several instances may serve one
 * storage directory one after the other (an open one to push to, then one that requires a login).
 */
final class TestRegistry implements AutoCloseable {
    private final Process process;
    private final int port;
    private final Path storage;

    private TestRegistry(Process process, int port, Path storage) {
        this.process = process;
        this.port = port;
        this.storage = storage;
    }

    /** Starts a registry; {@code authYaml} is the config's {@code auth:} section, or "" for none. */
    static TestRegistry start(Path dir, Path storage, String authYaml) {
        try {
            Files.createDirectories(storage);
            int port;
            try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                port = s.getLocalPort();
            }
            Path config = Files.createTempFile(dir, "registry-", ".yml");
            Files.writeString(
                    config,
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: " + storage
                            + "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + port + "\n" + authYaml);
            Process p = new ProcessBuilder("docker-registry", "serve", config.toString())
                    .redirectErrorStream(true)
                    .start();
            // Ready when it says it listens; its log goes on being drained so it never blocks.
            CompletableFuture<Boolean> listening = new CompletableFuture<>();
            StringBuilder log = new StringBuilder();
            Thread t = new Thread(() -> {
                try (BufferedReader r =
                        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        synchronized (log) {
                            if (log.length() < 100_000) {
                                log.append(line).append('\n');
                            }
                        }
                        if (line.contains("listening on 127.0.0.1:" + port)) {
                            listening.complete(true);
                        }
                    }
                } catch (IOException e) {
                    // the registry ended
                }
                listening.complete(false);
            });
            t.setDaemon(true);
            t.start();
            if (!listening.get(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("docker-registry did not start:\n" + log);
            }
            return new TestRegistry(p, port, storage);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (Exception e) {
            throw new IllegalStateException("starting docker-registry failed", e);
        }
    }

    int port() {
        return port;
    }

    String host() {
        return "127.0.0.1:" + port;
    }

    Path storage() {
        return storage;
    }

    /** The file holding a blob's bytes in the registry's filesystem storage. */
    Path blobData(String digest) {
        String hex = digest.substring("sha256:".length());
        return storage.resolve("docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
