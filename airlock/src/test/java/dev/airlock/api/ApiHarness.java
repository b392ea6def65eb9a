package dev.airlock.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.ServedDaemon;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code airlock serve} for API tests ({@link ServedDaemon}, with a small heap, so a
 * transfer that is not streamed fails) and Debian's curl as the client.
 */
final class ApiHarness implements AutoCloseable {
    /** The daemon's heap: far smaller than the files the tests move through it. */
    static final String DAEMON_HEAP = "-Xmx96m";

    final ServedDaemon served;
    final AirlockDirs dirs;
    final Cli cli;
    final String token;

    ApiHarness(String name) throws IOException {
        served = new ServedDaemon(name, DAEMON_HEAP);
        dirs = served.dirs();
        cli = served.cli();
        token = served.token();
    }

    String log() {
        return served.log();
    }

    Path socket() {
        return served.socket();
    }

    String base() {
        return served.url().toString();
    }

    /** What a curl run printed and how it ended. */
    record Curl(int exit, byte[] out, String err) {
        String text() {
            return new String(out, StandardCharsets.UTF_8);
        }

        /** The status line curl prints with {@code -w '\n%{http_code}'}: the last line. */
        int status() {
            String t = text().strip();
            return Integer.parseInt(t.substring(t.lastIndexOf('\n') + 1));
        }

        String body() {
            String t = text().strip();
            int nl = t.lastIndexOf('\n');
            return nl < 0 ? "" : t.substring(0, nl);
        }
    }

    /** curl over the unix socket; {@code path} is the API path with its query. */
    Curl unix(String path, String... options) {
        List<String> a = new ArrayList<>(List.of("curl", "-sS", "--unix-socket", socket().toString()));
        a.addAll(List.of(options));
        a.add("http://localhost" + path);
        return curl(a, null);
    }

    /** curl over TCP with the token. */
    Curl tcp(String path, String... options) {
        List<String> a = new ArrayList<>(List.of("curl", "-sS", "-H", "Authorization: Bearer " + token));
        a.addAll(List.of(options));
        a.add(base() + path);
        return curl(a, null);
    }

    static Curl curl(List<String> argv, byte @org.jspecify.annotations.Nullable [] stdin) {
        try {
            Process p = new ProcessBuilder(argv).start();
            CompletableFuture<byte[]> out = CompletableFuture.supplyAsync(() -> readAll(p.getInputStream()));
            CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> readAll(p.getErrorStream()));
            try (var in = p.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin);
                }
            } catch (IOException e) {
                // curl stopped reading (the daemon refused the upload): what it says is the result.
            }
            assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("curl finished").isTrue();
            return new Curl(p.exitValue(), out.join(), new String(err.join(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static byte[] readAll(java.io.InputStream in) {
        try (in) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        served.close();
    }
}
