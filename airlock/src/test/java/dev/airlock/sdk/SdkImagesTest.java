package dev.airlock.sdk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.testing.ServedDaemon;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SDK's image build against the real daemon ({@code airlock serve}): a Dockerfile FROM the
 * built-in base image whose RUN step executes in a gVisor sandbox, its steps and output passed to
 * the caller as they come, and a failing RUN thrown with its status and output.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SdkImagesTest {
    private ServedDaemon daemon;
    private Airlock airlock;

    @TempDir
    Path context;

    @BeforeAll
    void setUp() throws IOException {
        daemon = new ServedDaemon("sdk-images");
        airlock = Airlock.connect(daemon.socket());
    }

    @AfterAll
    void tearDown() {
        if (airlock != null) {
            airlock.close();
        }
        if (daemon != null) {
            daemon.close();
        }
    }

    @Test
    void buildsWithStepsAndOutputAndThrowsAFailingStep() throws IOException {
        Files.writeString(context.resolve("note.txt"), "from the sdk\n");
        Files.writeString(
                context.resolve("Dockerfile"), "FROM base\nCOPY note.txt /note.txt\nRUN cat /note.txt > /copy.txt\n");
        List<String> steps = new ArrayList<>();
        ByteArrayOutputStream output = new ByteArrayOutputStream();
        Images.Image image = airlock.images().build(context, "sdk/built:1", "gvisor", steps::add, output::writeBytes);
        assertThat(image.name()).isEqualTo("sdk/built:1");
        assertThat(image.id()).hasSize(64);
        assertThat(steps).anyMatch(s -> s.startsWith("step 3/3: RUN cat /note.txt"));

        Files.writeString(context.resolve("Dockerfile"), "FROM base\nRUN echo about to fail; exit 4\n");
        output.reset();
        assertThatThrownBy(() -> airlock.images().build(context, "sdk/failed:1", "gvisor", s -> {}, output::writeBytes))
                .isInstanceOf(AirlockException.class)
                .hasMessageContaining("exit status 4")
                .hasMessageContaining("about to fail");
        assertThat(output.toString(StandardCharsets.UTF_8)).contains("about to fail");
    }
}
