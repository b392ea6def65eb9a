package dev.airlock.local;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.net.Secret;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A sandbox's secrets and interception CA key are replaced so that, at every moment, the file
 * holds the old content or the new one, and only its owner can read it. Before, they were
 * deleted and then created: a crash in between lost the secrets, and a reader in between found
 * no file or an empty one, which is what this test sees happen.
 */
class SandboxSecretsFileTest {
    @Test
    void aReplacedSecretsFileIsNeverMissingPartialOrWiderThanTheOwner(@TempDir Path dir) throws Exception {
        List<Secret> a = List.of(new Secret("TOKEN", "a".repeat(4000), "AIRLOCK_PLACEHOLDER_A", List.of("x.test")));
        List<Secret> b = List.of(new Secret("TOKEN", "b".repeat(4000), "AIRLOCK_PLACEHOLDER_B", List.of("x.test")));
        SandboxNetwork.saveSecrets(dir, a);
        Path file = dir.resolve(SandboxNetwork.SECRETS);
        AtomicBoolean writing = new AtomicBoolean(true);
        List<String> seen = new ArrayList<>();
        Thread reader = Thread.ofPlatform().start(() -> {
            while (writing.get()) {
                try {
                    String perms = PosixFilePermissions.toString(Files.getPosixFilePermissions(file));
                    List<Secret> now = SandboxNetwork.loadSecrets(dir);
                    if (!perms.equals("rw-------") || !(now.equals(a) || now.equals(b))) {
                        seen.add(perms + " " + now);
                    }
                } catch (NoSuchFileException e) {
                    seen.add("no file");
                } catch (Exception e) {
                    seen.add("unreadable: " + e);
                }
            }
        });
        for (int i = 0; i < 2000; i++) {
            SandboxNetwork.saveSecrets(dir, i % 2 == 0 ? b : a);
        }
        writing.set(false);
        reader.join();
        assertThat(seen)
                .as("what a reader saw while the file was replaced 2000 times")
                .isEmpty();
        assertThat(SandboxNetwork.loadSecrets(dir)).isEqualTo(a);
    }
}
