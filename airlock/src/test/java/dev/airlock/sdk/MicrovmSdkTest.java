package dev.airlock.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.testing.ServedDaemon;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The SDK's microVM-only calls against the real daemon: pause, resume and fork. */
class MicrovmSdkTest {
    @Test
    void aMicrovmIsPausedResumedAndForked() throws IOException {
        try (ServedDaemon daemon = new ServedDaemon("sdk-microvm");
                Airlock airlock = Airlock.connect(daemon.socket())) {
            Sandbox vm = airlock.sandboxes()
                    .create(SandboxSpec.builder()
                            .name("vm")
                            .runtime("microvm")
                            .memoryMiB(256)
                            .build());
            assertThat(vm.info().runtime()).isEqualTo("microvm");
            // A process whose state lives only in memory survives the pause.
            assertThat(vm.sh("nohup sleep 600 >/dev/null 2>&1 & echo $!").exitCode())
                    .isZero();
            vm.files().write("/root/mark", "before\n");
            assertThat(vm.pause().state()).isEqualTo("PAUSED");
            assertThat(vm.resume().state()).isEqualTo("RUNNING");
            assertThat(vm.sh("pgrep -x sleep >/dev/null && cat /root/mark").stdoutText())
                    .isEqualTo("before\n");

            List<Sandbox> clones = vm.fork(2);
            assertThat(clones).extracting(Sandbox::name).containsExactly("vm-1", "vm-2");
            clones.getFirst().files().write("/root/mark", "changed in one\n");
            assertThat(clones.get(1).files().readString("/root/mark")).isEqualTo("before\n");
            assertThat(clones.getFirst().files().readString("/root/mark")).isEqualTo("changed in one\n");
            assertThat(vm.files().readString("/root/mark")).isEqualTo("before\n");
            for (Sandbox s : clones) {
                s.remove();
            }
            vm.remove();
            assertThat(airlock.sandboxes().list()).isEmpty();
        }
    }
}
