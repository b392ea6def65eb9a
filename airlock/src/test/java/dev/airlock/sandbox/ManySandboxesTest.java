package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Twenty sandboxes at once, each doing exec work concurrently, each seeing only its own state. */
class ManySandboxesTest {
    private static final int SANDBOXES = 20;
    private final AirlockDirs dirs = TestHost.isolated("many");

    @AfterEach
    void cleanUp() {
        TestHost.cleanUp(dirs);
    }

    @Test
    void twentySandboxesRunConcurrently() throws Exception {
        TestHost.ready();
        SandboxEngine engine = Engines.engine(dirs, Progress.SILENT);
        Resources small = new Resources(1, 256, 1024, 1024, null);
        List<String> names = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> work = new ArrayList<>();
            for (int i = 0; i < SANDBOXES; i++) {
                String name = "many-" + i;
                names.add(name);
                work.add(pool.submit(() -> {
                    Sandbox s = engine.start(engine.create(CreateOptions.builder()
                                    .name(name)
                                    .resources(small)
                                    .runtime("microvm")
                                    .build())
                            .name());
                    try (GuestChannel ch = engine.connect(s, Duration.ofSeconds(60))) {
                        List<Future<String>> execs = new ArrayList<>();
                        for (int j = 0; j < 3; j++) {
                            int n = j;
                            execs.add(pool.submit(() -> {
                                ByteArrayOutputStream out = new ByteArrayOutputStream();
                                ch.exec(
                                                ExecSpec.of(
                                                        "sh",
                                                        "-c",
                                                        "echo $(hostname)-" + n + " > /tmp/f" + n + "; cat /tmp/f" + n),
                                                out,
                                                OutputStream.nullOutputStream())
                                        .await();
                                return out.toString(StandardCharsets.UTF_8).strip();
                            }));
                        }
                        StringBuilder sb = new StringBuilder();
                        for (Future<String> e : execs) {
                            sb.append(e.get()).append(' ');
                        }
                        return sb.toString().strip();
                    }
                }));
            }
            for (int i = 0; i < SANDBOXES; i++) {
                assertThat(work.get(i).get()).isEqualTo("many-" + i + "-0 many-" + i + "-1 many-" + i + "-2");
            }
        } finally {
            for (String n : names) {
                if (engine.store().find(n).isPresent()) {
                    engine.remove(n, true);
                }
            }
        }
        assertThat(engine.list()).isEmpty();
    }
}
