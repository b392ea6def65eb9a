package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.backend.WarmPool;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.image.ImageStore;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code image rm} ends the gVisor warm pool's sandboxes of that image at once: before, they
 * stayed (holding the image's mount) until the daemon stopped. The image is the test's own,
 * imported from an OCI layout under a name of its own, so removing it touches no other test.
 */
class GvisorPoolImageRemovalTest {
    private static final String POOL_MARKER = "pooled-gvisor";

    private static Path work;
    private static AirlockDirs dirs;
    private static SandboxEngine engine;

    @BeforeAll
    static void setUp() throws Exception {
        TestHost.ready();
        work = Files.createTempDirectory("airlock-pool-image-rm");
        dirs = TestHost.isolated("pool-image-rm");
        engine = Engines.engine(dirs, Progress.STDERR, true);
        Engines.gvisor(engine).enableWarmPool(1, 4096);
    }

    @AfterAll
    static void tearDown() throws Exception {
        for (Sandbox s : engine.list()) {
            engine.remove(s.id(), true);
        }
        Engines.gvisor(engine).closeWarmPool(Duration.ofSeconds(60));
        TestHost.cleanUp(dirs);
        HostFiles.deleteTree(work);
    }

    @Test
    void removingAnImageEndsItsPooledSandboxes() throws Exception {
        Path layout = TestImages.buildLayout(work, "v1");
        String name = "pool-rm-" + Long.toHexString(System.nanoTime());
        new ImageImport(new ImageStore(dirs), Progress.SILENT).importFrom(layout + ":v1", name, Platform.LINUX_AMD64);

        Sandbox s = engine.create(CreateOptions.builder()
                .name("rm-a")
                .image(name)
                .runtime("gvisor")
                .build());
        engine.start(s.name());
        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        // the start filled the pool with one sandbox of this image
        assertThat(WarmPool.leftovers(dirs.sandboxes(), POOL_MARKER)).hasSize(1);
        Path pooled = WarmPool.leftovers(dirs.sandboxes(), POOL_MARKER).getFirst();

        engine.remove(s.id(), true);
        engine.removeImage(name);

        assertThat(WarmPool.leftovers(dirs.sandboxes(), POOL_MARKER)).isEmpty();
        assertThat(pooled).doesNotExist();
        // nothing mounted from the pooled sandbox's directory is left on the host
        assertThat(Files.readString(Path.of("/proc/self/mountinfo"))).doesNotContain(pooled.toString());
    }
}
