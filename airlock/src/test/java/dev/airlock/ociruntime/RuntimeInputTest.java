package dev.airlock.ociruntime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.guest.ContainerMounts;
import dev.airlock.guest.ProcessConfinement;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The inputs of spec, update and directory binds that need no sandbox: what is taken, what is refused. */
class RuntimeInputTest {
    @TempDir
    Path dir;

    @Test
    void specWritesAConfigThisRuntimeAcceptsAndNeverOverwritesOne() throws IOException {
        Files.createDirectories(dir.resolve("rootfs"));
        assertThat(new AirlockRuntime().run(List.of("spec", "--bundle", dir.toString())))
                .isZero();
        BundleConfig c = BundleConfig.read(dir);
        assertThat(c.process().args()).containsExactly("sh");
        assertThat(c.mode()).isEqualTo("microvm");
        // the default spec's masked and read-only paths are applied in the container's mount namespace
        assertThat(c.replacedByVm()).doesNotContain("linux.maskedPaths", "linux.readonlyPaths");
        ProcessConfinement confinement = Objects.requireNonNull(c.process().confinement());
        ContainerMounts mounts = Objects.requireNonNull(confinement.mounts());
        assertThat(mounts.masked()).contains("/proc/kcore");

        String before = Files.readString(dir.resolve("config.json"));
        assertThatThrownBy(() -> new AirlockRuntime().run(List.of("spec", "--bundle", dir.toString())))
                .hasMessageContaining("exists. Remove it first");
        assertThat(Files.readString(dir.resolve("config.json"))).isEqualTo(before);
        assertThatThrownBy(() -> new AirlockRuntime().run(List.of("spec", "--rootless")))
                .hasMessageContaining("--rootless");
    }

    @Test
    void wordsAfterTheContainerIdAreRefusedNotIgnored() throws IOException {
        // A bundle in the current directory and another named after the id: the option after the id
        // was once ignored and the container made from the current directory, runc refuses it.
        Path root = dir.resolve("state");
        Path bundle = Files.createDirectories(dir.resolve("bundle"));
        Files.createDirectories(bundle.resolve("rootfs"));
        assertThat(new AirlockRuntime().run(List.of("spec", "--bundle", bundle.toString())))
                .isZero();
        assertThatThrownBy(() -> new AirlockRuntime()
                        .run(List.of("--root", root.toString(), "create", "box", "--bundle", bundle.toString())))
                .hasMessageContaining("unexpected '--bundle' after the container id: options go before the id");
        assertThat(root.resolve("box")).doesNotExist();
        for (List<String> args : List.of(
                List.of("state", "box", "extra"),
                List.of("start", "box", "extra"),
                List.of("delete", "box", "--force"),
                List.of("kill", "box", "TERM", "extra"))) {
            List<String> argv = new java.util.ArrayList<>(List.of("--root", root.toString()));
            argv.addAll(args);
            assertThatThrownBy(() -> new AirlockRuntime().run(argv))
                    .as(String.join(" ", args))
                    .hasMessageContaining("after the container id");
        }
    }

    @Test
    void updateTakesMemoryAndPidsAndRefusesTheRestByName() {
        ResourceUpdate u = ResourceUpdate.parse(
                "{\"memory\": {\"limit\": 1048576}, \"pids\": {\"limit\": 9}," + " \"cpu\": {}, \"blockIO\": null}");
        assertThat(u.memory()).isEqualTo(1048576L);
        assertThat(u.pids()).isEqualTo(9L);
        assertThatThrownBy(() -> ResourceUpdate.parse("{\"cpu\": {\"shares\": 512}}"))
                .hasMessageContaining("resources.cpu cannot be changed");
        assertThatThrownBy(() -> ResourceUpdate.parse("{\"memory\": {\"swap\": 5}}"))
                .hasMessageContaining("resources.memory.swap");
        assertThatThrownBy(() -> ResourceUpdate.parse("[1]")).hasMessageContaining("JSON object");
        assertThatThrownBy(() -> ResourceUpdate.parse("{")).hasMessageContaining("not valid JSON");
        assertThat(ResourceUpdate.bytes("64m")).isEqualTo(64L << 20);
        assertThat(ResourceUpdate.bytes("1G")).isEqualTo(1L << 30);
        assertThat(ResourceUpdate.bytes("4096")).isEqualTo(4096L);
        assertThatThrownBy(() -> ResourceUpdate.bytes("lots")).hasMessageContaining("not a number");
    }

    @Test
    void aBindDestinationNeverFollowsASymlinkOutOfTheRootfs() throws IOException {
        Path rootfs = Files.createDirectories(dir.resolve("rootfs"));
        Path outside = Files.createDirectories(dir.resolve("host-etc"));
        Files.createSymbolicLink(rootfs.resolve("data"), outside);
        assertThatThrownBy(() -> DirectoryBinds.inside(rootfs, "/data/x"))
                .hasMessageContaining("data is a symlink in the container's rootfs");
        assertThat(outside.resolve("x")).doesNotExist();
        assertThatThrownBy(() -> DirectoryBinds.inside(rootfs, "/a/../../etc")).hasMessageContaining("'..'");
        assertThatThrownBy(() -> DirectoryBinds.inside(rootfs, "/"))
                .hasMessageContaining("replaces the container's root");
        Files.writeString(rootfs.resolve("file"), "x");
        assertThatThrownBy(() -> DirectoryBinds.inside(rootfs, "/file/sub")).hasMessageContaining("not a directory");
        assertThat(DirectoryBinds.inside(rootfs, "/deep/er")).isEqualTo(rootfs.resolve("deep/er"));
        assertThat(rootfs.resolve("deep/er")).isDirectory();
    }

    @Test
    void directoryBindsAreMicrovmOnlyAndAMissingHostPathIsNamed() throws IOException {
        Path rootfs = Files.createDirectories(dir.resolve("rootfs"));
        String bind = "{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"" + dir.resolve("nope")
                + "\", \"options\": [\"rbind\", \"ro\", \"nosuid\"]}";
        Files.writeString(
                dir.resolve("config.json"),
                "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"true\"]}, \"root\": {\"path\": \"rootfs\"},"
                        + " \"mounts\": [" + bind + "]}");
        assertThatThrownBy(() -> BundleConfig.read(dir))
                .hasMessageContaining("the host path " + dir.resolve("nope") + " does not exist");
        // one that exists at create but is gone when it is mounted is named there too
        Files.createDirectories(dir.resolve("nope"));
        BundleConfig c = BundleConfig.read(dir);
        assertThat(c.binds())
                .containsExactly(new DirectoryBinds.Bind(dir.resolve("nope"), "/data", List.of("ro", "nosuid")));
        Files.delete(dir.resolve("nope"));
        assertThatThrownBy(() -> DirectoryBinds.mount(rootfs, c.binds(), dir))
                .hasMessageContaining("the host path " + dir.resolve("nope") + " does not exist");
        Files.createDirectories(dir.resolve("nope"));

        Files.writeString(
                dir.resolve("config.json"),
                "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"true\"]}, \"root\": {\"path\": \"rootfs\"},"
                        + " \"annotations\": {\"run.airlock.runtime\": \"gvisor\"}, \"mounts\": [" + bind + "]}");
        assertThatThrownBy(() -> BundleConfig.read(dir)).hasMessageContaining("microvm-mode containers only");
    }
}
