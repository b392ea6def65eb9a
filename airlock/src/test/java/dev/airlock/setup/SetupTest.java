package dev.airlock.setup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.TestHost;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SetupTest {

    @Test
    void secondSetupBuildsNothing() {
        TestHost.ready();
        List<String> said = new ArrayList<>();
        Setup.Report again = new Setup(AirlockDirs.fromEnvironment(), said::add).ensure();
        assertThat(again.built()).isEmpty();
        assertThat(said).noneMatch(line -> line.contains("building"));
        assertThat(again.kernel().vmlinux()).exists();
        assertThat(again.image().file()).exists();
    }

    @Test
    void tooLittleDiskSpaceIsAClearError() {
        assertThatThrownBy(() -> Setup.checkSpace(Path.of("/tmp/no/such/dir"), Long.MAX_VALUE))
                .isInstanceOf(Setup.SetupException.class)
                .hasMessageContaining("not enough disk space in /tmp")
                .hasMessageContaining("MiB free")
                .hasMessageContaining("AIRLOCK_CACHE_DIR");
        assertThatCode(() -> Setup.checkSpace(Path.of("/tmp"), 1)).doesNotThrowAnyException();
    }
}
