package dev.airlock.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link Airlock#connect()} looks for the socket where the daemon puts it. */
class DefaultSocketTest {
    @Test
    void theSdkLooksWhereTheDaemonListens() {
        assertThat(Airlock.defaultSocket(Map.of("AIRLOCK_RUNTIME_DIR", "/run/x", "XDG_RUNTIME_DIR", "/run/user/7")))
                .isEqualTo(Path.of("/run/x/airlockd.sock"));
        assertThat(Airlock.defaultSocket(Map.of("AIRLOCK_RUNTIME_DIR", " ", "XDG_RUNTIME_DIR", "/run/user/7")))
                .isEqualTo(Path.of("/run/user/7/airlock/airlockd.sock"));
        assertThat(Airlock.defaultSocket(Map.of()))
                .isEqualTo(Path.of("/tmp/airlock-" + System.getProperty("user.name") + "/airlockd.sock"));
        // and in this process's environment, the daemon's own choice
        assertThat(Airlock.defaultSocket(System.getenv()))
                .isEqualTo(AirlockDirs.fromEnvironment().runtime().resolve("airlockd.sock"));
    }
}
