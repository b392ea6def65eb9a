package dev.airlock.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What a sandbox may join by path: a namespace file of the type asked for, never the host's own. */
class NamespaceFileTest {
    private Path dir;
    private Path netns;

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory("airlock-nsfile-");
        netns = dir.resolve("netns");
        Files.createFile(netns);
        // a network namespace of its own, kept by a bind mount as CNI keeps a pod's under /var/run/netns
        HostCommand.check(List.of("unshare", "--net=" + netns, "true"));
    }

    @AfterEach
    void tearDown() {
        HostCommand.run(List.of("umount", netns.toString()), null, null);
        HostFiles.deleteTree(dir);
    }

    @Test
    void aNamespaceFileOfTheRightTypeIsAccepted() {
        assertThatCode(() -> NamespaceFile.check("network", netns.toString())).doesNotThrowAnyException();
    }

    @Test
    void theWrongTypeNoNamespaceAndTheHostsOwnAreRefusedInWords() throws IOException {
        assertThatThrownBy(() -> NamespaceFile.check("ipc", netns.toString()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is a network namespace, not a ipc namespace");
        Path plain = Files.writeString(dir.resolve("plain"), "x");
        assertThatThrownBy(() -> NamespaceFile.check("network", plain.toString()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is not a namespace file");
        assertThatThrownBy(() -> NamespaceFile.check("uts", "/proc/self/ns/uts"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("the host's own uts namespace");
        assertThatThrownBy(() -> NamespaceFile.check("mount", "/proc/self/ns/mnt"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not mount");
        assertThatThrownBy(() -> NamespaceFile.check("network", "relative/net"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is not absolute");
        assertThat(NamespaceFile.procName("network")).isEqualTo("net");
    }
}
