package dev.airlock.oci;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Real runtime, real base image, real agent; containers made here are removed by close(). */
final class ContainerHarness implements AutoCloseable {
    static final Duration START = Duration.ofSeconds(30);

    record Result(ExitStatus status, String out, String err) {
        int code() {
            return status.shellStatus();
        }
    }

    final OciContainers backend;
    final Path image;
    final Path agent;
    final Path dir;
    final Path sockets;
    private final List<Container> made = new ArrayList<>();

    ContainerHarness(OciRuntime runtime) throws IOException {
        assumeTrue("root".equals(System.getProperty("user.name")), "container tests need root");
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        Image base = new ImageStore(dirs)
                .find("base")
                .orElseThrow(() -> new IllegalStateException("no base image: run bin/airlock setup"));
        this.image = base.file();
        this.agent = agentBinary();
        this.dir = Files.createTempDirectory("airlock-ct-");
        this.sockets = Files.createTempDirectory(Path.of("/tmp"), "alct");
        this.backend = new OciContainers(runtime, new ImageMounts(dirs.cache().resolve("container-mounts")));
    }

    static OciRuntime runtime(String name) throws IOException {
        Path state = Path.of("/run/airlock-test-" + name);
        Files.createDirectories(state);
        Path bin = OciRuntime.onPath(name).orElse(null);
        assumeTrue(bin != null, name + " is not installed");
        return new OciRuntime(bin, state);
    }

    static Path agentBinary() {
        URL url = GuestChannel.class.getResource("bin/airlock-init");
        if (url == null) {
            throw new IllegalStateException("airlock-init is not on the class path; build with ./mvnw verify");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    ContainerSpec.Builder spec(String id) {
        return ContainerSpec.builder(id, image, dir.resolve(id), agent).socketDir(sockets.resolve(id));
    }

    Container start(ContainerSpec spec) {
        Container c = backend.create(spec, START);
        made.add(c);
        return c;
    }

    static Result exec(Container c, String... argv) throws IOException, InterruptedException {
        return exec(c, ExecSpec.builder(argv).timeout(Duration.ofSeconds(60)).build());
    }

    static Result exec(Container c, ExecSpec spec) throws IOException, InterruptedException {
        try (GuestChannel ch = c.connect(Duration.ofSeconds(10))) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            ExitStatus st = ch.exec(spec, out, err).await();
            return new Result(st, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }
    }

    static Result sh(Container c, String script) throws IOException, InterruptedException {
        return exec(c, "sh", "-c", script);
    }

    @Override
    public void close() {
        for (Container c : made) {
            backend.remove(c);
        }
        HostFiles.deleteTree(sockets);
        HostFiles.deleteTree(dir);
    }
}
