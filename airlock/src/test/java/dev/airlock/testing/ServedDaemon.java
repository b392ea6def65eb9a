package dev.airlock.testing;

import dev.airlock.daemon.ApiToken;
import dev.airlock.daemon.Daemon;
import dev.airlock.host.AirlockDirs;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real {@code airlock serve --listen 127.0.0.1:0} in its own JVM with a private data
 * directory: the daemon API and SDK tests drive over its unix socket and over TCP with its
 * token. It is ready once it has said where it listens.
 */
public final class ServedDaemon implements AutoCloseable {
    private static final Pattern SERVING = Pattern.compile("serving the API on http://[^\\s,]*:(\\d+)");

    private final AirlockDirs dirs;
    private final Cli cli;
    private final Process process;
    private final URI url;
    private final String token;
    private final StringBuilder log = new StringBuilder();

    /** Starts one; {@code jvmOptions} go to the daemon's JVM (e.g. a small heap). */
    public ServedDaemon(String name, String... jvmOptions) throws IOException {
        this(name, Map.of(), jvmOptions);
    }

    /** Starts one with {@code env} added to its environment (e.g. {@code AIRLOCK_RUNTIME}). */
    public ServedDaemon(String name, Map<String, String> env, String... jvmOptions) throws IOException {
        TestHost.ready();
        dirs = TestHost.isolated(name);
        cli = new Cli(dirs);
        List<String> argv = new ArrayList<>(cli.argv("serve", "--listen", "127.0.0.1:0"));
        argv.addAll(1, List.of(jvmOptions));
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
        cli.environment(pb.environment());
        pb.environment().putAll(env);
        process = pb.start();
        // The daemon names the port it listens on once it serves: that line is the signal to go on.
        CompletableFuture<String> port = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try (BufferedReader out =
                    new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    synchronized (log) {
                        log.append(line).append('\n');
                    }
                    Matcher m = SERVING.matcher(line);
                    if (m.find()) {
                        port.complete(m.group(1));
                    }
                }
            } catch (IOException e) {
                // The daemon ended.
            }
            port.completeExceptionally(new IllegalStateException("airlock serve ended: " + log()));
        });
        try {
            url = URI.create("http://127.0.0.1:" + port.get(120, TimeUnit.SECONDS));
        } catch (Exception e) {
            close();
            throw new IllegalStateException("airlock serve did not come up: " + log(), e);
        }
        token = Files.readString(ApiToken.file(dirs.data())).strip();
    }

    public AirlockDirs dirs() {
        return dirs;
    }

    /** The CLI on this daemon's directories. */
    public Cli cli() {
        return cli;
    }

    /** What the daemon printed so far. */
    public String log() {
        synchronized (log) {
            return log.toString();
        }
    }

    public Path socket() {
        return Daemon.socket(dirs);
    }

    /** {@code http://127.0.0.1:PORT}. */
    public URI url() {
        return url;
    }

    public String token() {
        return token;
    }

    public boolean alive() {
        return process.isAlive();
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(20, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        TestHost.cleanUp(dirs);
    }
}
