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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The process holding a sandbox (its VMM, or its container's init) killed under it: the sandbox shows as failed, its disk survives, rm cleans up. */
abstract class SandboxCrashTest {
    /** microvm or container. */
    abstract String runtime();

    private final AirlockDirs dirs = TestHost.isolated("crash-" + runtime());

    @AfterEach
    void cleanUp() {
        TestHost.cleanUp(dirs);
    }

    @Test
    void killedVmmLeavesAFailedSandboxWithItsDiskIntact() throws Exception {
        TestHost.ready();
        SandboxEngine engine = Engines.engine(dirs, Progress.STDERR);
        Sandbox s = engine.start(
                engine.create(CreateOptions.builder().runtime(runtime()).build())
                        .name());
        try (GuestChannel ch = engine.connect(s, Duration.ofSeconds(30))) {
            // sync so the work is on the virtual disk before the crash, as an editor's save would be
            ch.exec(
                            ExecSpec.of("sh", "-c", "echo precious > /root/work.txt && sync"),
                            OutputStream.nullOutputStream(),
                            OutputStream.nullOutputStream())
                    .await();
        }
        ProcessHandle vmm = ProcessHandle.of(s.vmmPid()).orElseThrow();
        vmm.destroyForcibly();
        vmm.onExit().get();

        Sandbox after = engine.inspect(s.name());
        assertThat(after.state()).isEqualTo(SandboxState.FAILED);
        assertThat(after.error()).contains("exited unexpectedly").contains("disk is kept");
        assertThat(engine.layer(s)).exists();

        Sandbox again = engine.start(s.name());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GuestChannel ch = engine.connect(again, Duration.ofSeconds(30))) {
            ch.exec(ExecSpec.of("cat", "/root/work.txt"), out, OutputStream.nullOutputStream())
                    .await();
        }
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("precious\n");

        engine.remove(s.name(), true);
        assertThat(dirs.sandboxes().resolve(s.id())).doesNotExist();
        assertThat(engine.list()).isEmpty();
        assertThat(ProcessHandle.allProcesses()
                        .filter(p -> p.info()
                                .commandLine()
                                .orElse("")
                                .contains(dirs.data().toString())))
                .isEmpty();
    }
}
