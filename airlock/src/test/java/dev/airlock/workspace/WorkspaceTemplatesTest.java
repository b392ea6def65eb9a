package dev.airlock.workspace;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessStamp;
import dev.airlock.testing.HostCrashDisk;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Workspace templates survive saves cut short: what a crash leaves behind never blocks a key,
 * and is cleaned up by the next use. (The crash itself, a CLI killed mid-save, is in
 * WorkspaceTest; here are the states it can leave.)
 */
class WorkspaceTemplatesTest {
    private Path root;
    private WorkspaceTemplates templates;
    private Path workspaces;

    @BeforeEach
    void setUp() throws Exception {
        root = Files.createTempDirectory("templates");
        AirlockDirs dirs = new AirlockDirs(root, root.resolve("cache"), root.resolve("data"), root.resolve("run"));
        templates = new WorkspaceTemplates(dirs);
        workspaces = root.resolve("cache/workspaces");
    }

    @AfterEach
    void tearDown() {
        HostFiles.deleteTree(root);
    }

    /** A container's upper directory, as a stopped sandbox leaves it. */
    private Path upper(String content) throws Exception {
        Path upper = Files.createDirectories(
                root.resolve("sandbox-" + System.nanoTime()).resolve("upper"));
        Files.createDirectories(upper.resolve("workspace"));
        Files.writeString(upper.resolve("workspace/installed"), content);
        return upper;
    }

    @Test
    void aKeyLeftWithoutItsMetadataIsSavedAgain() throws Exception {
        templates.save("k1", upper("first"), "/repo", List.of("setup"));
        assertThat(templates.layer("k1")).isPresent();
        // What the old save left when it died between moving the layer in and writing template.json.
        Files.delete(workspaces.resolve("k1/template.json"));
        assertThat(templates.layer("k1")).isEmpty();
        templates.save("k1", upper("second"), "/repo", List.of("setup"));
        Path layer = templates.layer("k1").orElseThrow();
        assertThat(Files.readString(layer.resolve("workspace/installed"))).isEqualTo("second");
        assertThat(templates.list())
                .extracting(WorkspaceTemplates.Template::key)
                .containsExactly("k1");
    }

    @Test
    void stagingLeftByADeadSaveIsRemovedAndALiveOneKept() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Path dead = Files.createDirectories(
                workspaces.resolve(".staging/k2." + new ProcessStamp(gone.pid(), 1).text() + ".aa/upper"));
        Path live = Files.createDirectories(
                workspaces.resolve(".staging/k3." + ProcessStamp.current().text() + ".bb/upper"));
        assertThat(templates.layer("k2")).isEmpty();
        assertThat(dead.getParent()).doesNotExist();
        assertThat(live).isDirectory();
        assertThat(templates.list()).isEmpty();
    }

    @Test
    void aSecondSaveOfTheSameKeyKeepsTheFirst() throws Exception {
        templates.save("k4", upper("first"), "/repo", List.of("setup"));
        templates.save("k4", upper("second"), "/repo", List.of("setup"));
        Path layer = templates.layer("k4").orElseThrow();
        assertThat(Files.readString(layer.resolve("workspace/installed"))).isEqualTo("first");
        try (var s = Files.list(workspaces.resolve(".staging"))) {
            assertThat(s.toList()).isEmpty();
        }
    }

    @Test
    void pruneRemovesOneRepositorysTemplates() throws Exception {
        templates.save("k5", upper("a"), "/repo-a", List.of("setup"));
        templates.save("k6", upper("b"), "/repo-b", List.of("setup"));
        assertThat(templates.prune("/repo-a")).isEqualTo(1);
        assertThat(templates.list())
                .extracting(WorkspaceTemplates.Template::repo)
                .containsExactly("/repo-b");
        assertThat(workspaces.resolve("k5")).doesNotExist();
    }

    /**
     * A saved template is there and whole after a host crash: its layer is written out before
     * {@code template.json} makes it a template, and its rename into place is made durable. Before, a crash right after the save left a
     * template that {@link WorkspaceTemplates#layer} handed out as whole, with its setup's files
     * empty (an upper directory) or its disk file holes (a microVM's layer): every later
     * workspace sandbox of that lockfile started from it.
     */
    @Test
    void aSavedTemplateIsWholeAfterAHostCrash() throws Exception {
        byte[] disk = new byte[3 << 20];
        new java.util.Random(7).nextBytes(disk);
        Path upper = upper("installed by setup");
        try (HostCrashDisk crashDisk = HostCrashDisk.make(root, 64)) {
            // Beside the cache, as a sandbox's layer is (copy_file_range copies within one filesystem).
            Path layerFile = crashDisk.root().resolve("layer.ext4");
            Files.write(layerFile, disk);
            Path cache = crashDisk.root().resolve("cache");
            WorkspaceTemplates onDisk =
                    new WorkspaceTemplates(new AirlockDirs(root, cache, root.resolve("data"), root.resolve("run")));
            onDisk.save("dir", upper, "/repo", List.of("setup"));
            onDisk.save("file", layerFile, "/repo", List.of("setup"));
            crashDisk.crash();

            onDisk = new WorkspaceTemplates(new AirlockDirs(root, cache, root.resolve("data"), root.resolve("run")));
            assertThat(Files.readString(onDisk.layer("dir").orElseThrow().resolve("workspace/installed")))
                    .isEqualTo("installed by setup");
            assertThat(Files.readAllBytes(onDisk.layer("file").orElseThrow())).isEqualTo(disk);
        }
    }
}
