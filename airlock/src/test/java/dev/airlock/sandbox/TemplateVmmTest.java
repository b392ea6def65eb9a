package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/** A VM template saved by one VMM is never restored by another: it is rebuilt by the VMM running now. */
class TemplateVmmTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    /**
     * Debian bookworm's QEMU 7.2, unpacked (never installed) by bench/qemu-7.2.sh into the shared
     * cache, where it stays for later runs.
     */
    private static Path qemu72() throws Exception {
        Process p = new ProcessBuilder(Path.of(System.getProperty("airlock.home"), "bench", "qemu-7.2.sh")
                        .toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).strip();
        assertThat(p.waitFor()).as("bench/qemu-7.2.sh").isZero();
        return Path.of(out.lines().reduce((a, b) -> b).orElseThrow());
    }

    private AirlockDirs dirs;
    private final List<String> messages = new CopyOnWriteArrayList<>();
    private final Progress progress = m -> {
        messages.add(m);
        System.err.println("airlock: " + m);
    };

    @BeforeEach
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("template-vmm");
    }

    @AfterEach
    void tearDown() {
        TestHost.cleanUp(dirs);
    }

    private Sandbox start(SandboxEngine engine, String name) {
        return engine.start(engine.create(
                        CreateOptions.builder().name(name).runtime("microvm").build())
                .name());
    }

    private static JsonNode manifest(SandboxEngine engine, String key) throws Exception {
        return JSON.readTree(Files.readString(
                Engines.microvm(engine).templateDir().resolve(key).resolve("manifest.json")));
    }

    private static void runs(SandboxEngine engine, Sandbox s) throws Exception {
        try (GuestChannel ch = engine.connect(s, Duration.ofSeconds(60))) {
            assertThat(ch.exec(ExecSpec.of("true"), OutputStream.nullOutputStream(), OutputStream.nullOutputStream())
                            .await()
                            .exitCode())
                    .isZero();
        }
    }

    @Test
    void aTemplateWhoseManifestNamesAnotherVmmIsRebuiltNotRestored() throws Exception {
        SandboxEngine engine = Engines.engine(dirs, progress, true);
        Sandbox first = start(engine, "first");
        String key = engine.origin(first).substring("template ".length());
        JsonNode built = manifest(engine, key);
        String current = built.path("vmm").asString();
        assertThat(current).contains("QEMU emulator version");
        engine.remove(first.name(), true);
        // A stand-in for a template QEMU 7.2 saved: the same files, the manifest naming 7.2.
        String standIn = "qemu-system-x86_64 (QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3))";
        ObjectNode edited = ((ObjectNode) built).put("vmm", standIn);
        Path file = Engines.microvm(engine).templateDir().resolve(key).resolve("manifest.json");
        Files.writeString(file, JSON.writeValueAsString(edited));

        Sandbox second = start(engine, "second");
        assertThat(String.join("\n", messages))
                .contains("VM template " + key + " is unusable: it was saved by " + standIn);
        // Rebuilt in this very start by the running VMM, and restored from that.
        assertThat(engine.origin(second)).isEqualTo("template " + key);
        JsonNode rebuilt = manifest(engine, key);
        assertThat(rebuilt.path("vmm").asString()).isEqualTo(current);
        assertThat(rebuilt.path("created").asString())
                .isNotEqualTo(built.path("created").asString());
        runs(engine, second);
        engine.remove(second.name(), true);
    }

    @Test
    void aTemplateQemu72SavedIsNeverRestoredUnderTheCurrentQemu() throws Exception {
        System.setProperty("airlock.qemu", qemu72().toString());
        SandboxEngine old;
        try {
            old = Engines.engine(dirs, progress, true);
        } finally {
            System.clearProperty("airlock.qemu");
        }
        Sandbox s72 = start(old, "under-72");
        String key72 = old.origin(s72).substring("template ".length());
        assertThat(manifest(old, key72).path("vmm").asString()).contains("version 7.2");
        runs(old, s72);
        old.remove(s72.name(), true);
        Path state72 = Engines.microvm(old).templateDir().resolve(key72).resolve("state");
        long touched = Files.getLastModifiedTime(state72).toMillis();

        SandboxEngine current = Engines.engine(dirs, progress, true);
        Sandbox now = start(current, "under-current");
        String key = current.origin(now).substring("template ".length());
        assertThat(key).as("another VMM, another template").isNotEqualTo(key72);
        assertThat(manifest(current, key).path("vmm").asString()).doesNotContain("version 7.2");
        runs(current, now);
        // The 7.2 template was left as it was: never loaded, never rewritten.
        assertThat(Files.getLastModifiedTime(state72).toMillis()).isEqualTo(touched);
        assertThat(manifest(current, key72).path("vmm").asString()).contains("version 7.2");
        current.remove(now.name(), true);
    }
}
