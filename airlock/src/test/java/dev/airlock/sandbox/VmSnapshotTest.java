package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.Progress;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Templates, identity after restore, the fallback from a damaged template, pause/resume and
 * fork, on real microVMs (these features are microVM only).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class VmSnapshotTest {
    /**
     * A process whose state lives only in its memory: a counter it writes out every 100 ms (by
     * rename, so a reader never sees a half-written file).
     */
    private static final String COUNTER =
            "nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done'"
                    + " >/dev/null 2>&1 &"
                    + " echo $!";

    private AirlockDirs dirs;
    private final List<String> messages = new CopyOnWriteArrayList<>();
    private SandboxEngine engine;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("snapshot");
        engine = Engines.engine(dirs, m -> {
            messages.add(m);
            Progress.STDERR.step(m);
        });
    }

    @AfterAll
    void tearDown() {
        for (Sandbox s : engine.list()) {
            engine.remove(s.id(), true);
        }
        TestHost.cleanUp(dirs);
    }

    private Sandbox startNew(SandboxEngine e, String name) {
        Sandbox s =
                e.create(CreateOptions.builder().name(name).runtime("microvm").build());
        return e.start(s.name());
    }

    private String sh(Sandbox s, String script) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (GuestChannel ch = engine.connect(engine.inspect(s.id()), Duration.ofSeconds(30))) {
            ExitStatus st = ch.exec(ExecSpec.of("sh", "-c", script), out, err).await();
            assertThat(st.exitCode()).as("%s: %s", script, err).isZero();
        }
        return out.toString(StandardCharsets.UTF_8).strip();
    }

    /** Reads the counter until it has moved on from {@code after}: the process is running. */
    private long counterPast(Sandbox s, long after) throws Exception {
        return Long.parseLong(sh(
                s,
                "while [ \"$(cat /tmp/count 2>/dev/null || echo 0)\" -le " + after
                        + " ]; do sleep 0.05; done; cat /tmp/count"));
    }

    private Instant guestClock(Sandbox s) throws Exception {
        String ns = sh(s, "date +%s%N");
        return Instant.ofEpochSecond(0, Long.parseLong(ns));
    }

    @Test
    void sandboxesFromOneTemplateGetTheirOwnEntropyHostnameMachineIdAndTheRightClock() throws Exception {
        Sandbox a = startNew(engine, "tpl-a");
        assertThat(engine.origin(a)).startsWith("template ");
        // A cold boot in between makes the template at least a boot's time old, so a clock left
        // at the moment of the snapshot would show.
        Sandbox cold = startNew(Engines.engine(dirs, Progress.STDERR, false), "tpl-cold");
        assertThat(engine.origin(cold)).isEqualTo("cold");
        Sandbox b = startNew(engine, "tpl-b");
        assertThat(engine.origin(b)).isEqualTo(engine.origin(a));

        Path manifest = Engines.microvm(engine)
                .templateDir()
                .resolve(engine.origin(b).substring(9))
                .resolve("manifest.json");
        Instant built = Instant.parse(Files.readString(manifest).replaceAll("(?s).*\"created\":\"([^\"]+)\".*", "$1"));
        Instant before = Instant.now();
        Instant guest = guestClock(b);
        Instant after = Instant.now();
        assertThat(Duration.between(built, before)).isGreaterThan(Duration.ofSeconds(1));
        assertThat(guest).isBetween(before.minusMillis(500), after.plusMillis(500));

        String urandom = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'";
        assertThat(sh(a, urandom)).hasSize(64).isNotEqualTo(sh(b, urandom));
        assertThat(sh(a, "hostname")).isEqualTo("tpl-a");
        assertThat(sh(b, "hostname")).isEqualTo("tpl-b");
        assertThat(sh(a, "cat /etc/machine-id")).matches("[0-9a-f]{32}").isNotEqualTo(sh(b, "cat /etc/machine-id"));
        // Each has its own disk: a file written in one is not in the other.
        sh(a, "echo mine > /root/own");
        assertThat(sh(b, "cat /root/own 2>/dev/null || echo absent")).isEqualTo("absent");
    }

    @Test
    void aWorkspaceSetupLayerGetsItsOwnTemplateAndSandboxesOnItStartFromIt() throws Exception {
        // A setup layer as the workspace flow saves one: the disk of a stopped sandbox that ran setup.
        Sandbox setup = startNew(engine, "ws-setup");
        sh(setup, "mkdir -p /opt/deps && echo installed > /opt/deps/lib && sync");
        engine.stop(setup.id(), Duration.ofSeconds(30));
        Path layer = Files.createTempFile(dirs.data(), "setup-layer", ".ext4");
        dev.airlock.host.HostFiles.copySparse(engine.layer(engine.inspect(setup.id())), layer);

        Sandbox plain = startNew(engine, "ws-plain");
        Sandbox a = startOn(layer, "ws-a");
        Sandbox b = startOn(layer, "ws-b");
        // The first built the layer's template (its own key, not the plain one); the second restored it.
        assertThat(engine.origin(a)).startsWith("template ").isNotEqualTo(engine.origin(plain));
        assertThat(engine.origin(b)).isEqualTo(engine.origin(a));
        assertThat(sh(b, "cat /opt/deps/lib")).isEqualTo("installed");
        assertThat(sh(plain, "cat /opt/deps/lib 2>/dev/null || echo absent")).isEqualTo("absent");
        assertThat(sh(b, "hostname")).isEqualTo("ws-b");
        // Each has its own copy of the layer.
        sh(a, "echo a > /opt/deps/own");
        assertThat(sh(b, "cat /opt/deps/own 2>/dev/null || echo absent")).isEqualTo("absent");
    }

    private Sandbox startOn(Path layerTemplate, String name) {
        Sandbox s = engine.create(CreateOptions.builder()
                .name(name)
                .layerTemplate(layerTemplate)
                .runtime("microvm")
                .build());
        return engine.start(s.name());
    }

    @Test
    void aDamagedTemplateIsReportedAndTheSandboxBootsColdThenItIsRebuilt() throws Exception {
        Sandbox first = startNew(engine, "dmg-0");
        String key = engine.origin(first).substring(9);
        Path template = Engines.microvm(engine).templateDir().resolve(key);

        // Device state that is garbage but matches its manifest: QEMU itself refuses it.
        Files.write(
                template.resolve("state"), "not a migration stream".repeat(100).getBytes(StandardCharsets.UTF_8));
        Path manifest = template.resolve("manifest.json");
        Files.writeString(
                manifest,
                Files.readString(manifest)
                        .replaceAll(
                                "\"stateSha256\":\"[0-9a-f]+\"",
                                "\"stateSha256\":\"" + Hashing.sha256(template.resolve("state")) + "\""));
        messages.clear();
        Sandbox broken = startNew(engine, "dmg-1");
        assertThat(engine.origin(broken)).isEqualTo("cold");
        assertThat(String.join("\n", messages)).contains("warning: VM template " + key + " is unusable");
        assertThat(sh(broken, "echo ok; hostname")).isEqualTo("ok\ndmg-1");

        // The next start builds the template again and uses it.
        Sandbox rebuilt = startNew(engine, "dmg-2");
        assertThat(engine.origin(rebuilt)).isEqualTo("template " + key);

        // A manifest for another configuration is not trusted either.
        Files.writeString(manifest, Files.readString(manifest).replace("\"key\":\"" + key + "\"", "\"key\":\"other\""));
        messages.clear();
        Sandbox mismatched = startNew(engine, "dmg-3");
        assertThat(engine.origin(mismatched)).isEqualTo("cold");
        assertThat(String.join("\n", messages)).contains("built for another configuration");
        assertThat(sh(mismatched, "echo ok")).isEqualTo("ok");
        for (String n : List.of("dmg-0", "dmg-1", "dmg-2", "dmg-3")) {
            engine.remove(n, true);
        }
    }

    @Test
    void pauseFreesTheVmAndResumeContinuesItsProcesses() throws Exception {
        Sandbox s = startNew(engine, "pausing");
        String pid = sh(s, COUNTER);
        sh(s, "echo kept > /root/file");
        long before = counterPast(s, 0);
        long vmm = engine.inspect(s.id()).vmmPid();

        Sandbox paused = engine.pause(s.name());
        assertThat(paused.state()).isEqualTo(SandboxState.PAUSED);
        assertThat(dev.airlock.host.ProcessExit.hasExited(vmm)).isTrue();
        assertThat(engine.list().stream()
                        .filter(x -> x.name().equals("pausing"))
                        .findFirst()
                        .orElseThrow()
                        .state())
                .isEqualTo(SandboxState.PAUSED);
        assertThatThrownBy(() -> engine.start("pausing")).hasMessageContaining("airlock resume pausing");

        Sandbox resumed = engine.resume(s.name());
        assertThat(resumed.state()).isEqualTo(SandboxState.RUNNING);
        assertThat(engine.origin(resumed)).isEqualTo("resumed");
        // The same process, with the count it had in memory, carries on counting.
        assertThat(sh(resumed, "kill -0 " + pid + " && echo alive")).isEqualTo("alive");
        assertThat(counterPast(resumed, before)).isGreaterThan(before);
        assertThat(sh(resumed, "cat /root/file")).isEqualTo("kept");
        Instant host = Instant.now();
        assertThat(guestClock(resumed)).isBetween(host.minusSeconds(1), host.plusSeconds(1));

        // A paused sandbox can also be stopped: it is resumed to shut down cleanly, so its files reach its disk.
        engine.pause(s.name());
        assertThat(engine.stop(s.name(), Duration.ofSeconds(5)).state()).isEqualTo(SandboxState.STOPPED);
        Sandbox again = engine.start(s.name());
        assertThat(sh(again, "cat /root/file")).isEqualTo("kept");
        engine.remove(s.name(), true);
    }

    @Test
    void forkClonesRunningProcessesAndFilesAndTheClonesDiverge() throws Exception {
        Sandbox src = startNew(engine, "origin");
        String pid = sh(src, COUNTER);
        sh(src, "echo from-origin > /root/data");
        long atFork = counterPast(src, 0);

        List<Sandbox> clones = engine.fork("origin", List.of("origin-1", "origin-2"));
        assertThat(clones).extracting(Sandbox::name).containsExactly("origin-1", "origin-2");
        assertThat(clones).allSatisfy(c -> assertThat(c.state()).isEqualTo(SandboxState.RUNNING));
        assertThat(engine.list()).extracting(Sandbox::name).contains("origin", "origin-1", "origin-2");

        for (Sandbox c : Stream.concat(Stream.of(src), clones.stream()).toList()) {
            // Every one of them (the source too) runs the counter process, from where it was.
            assertThat(sh(c, "kill -0 " + pid + " && echo alive")).isEqualTo("alive");
            assertThat(counterPast(c, atFork)).isGreaterThan(atFork);
            assertThat(sh(c, "cat /root/data")).isEqualTo("from-origin");
        }
        Sandbox one = clones.get(0);
        Sandbox two = clones.get(1);
        assertThat(engine.origin(one)).isEqualTo("fork of origin");
        assertThat(sh(one, "hostname")).isEqualTo("origin-1");
        sh(one, "echo changed-in-1 > /root/data; kill " + pid);
        assertThat(sh(two, "cat /root/data")).isEqualTo("from-origin");
        assertThat(sh(src, "cat /root/data")).isEqualTo("from-origin");
        assertThat(sh(two, "kill -0 " + pid + " && echo alive")).isEqualTo("alive");
        String urandom = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'";
        assertThat(sh(one, urandom)).isNotEqualTo(sh(two, urandom));
        // A clone's layer holds the source's /etc/machine-id, which its identity overwrites in place.
        List<String> machineIds = new java.util.ArrayList<>();
        for (Sandbox c : List.of(src, one, two)) {
            machineIds.add(sh(c, "cat /etc/machine-id"));
        }
        for (String id : machineIds) {
            assertThat(id).matches("[0-9a-f]{32}");
        }
        assertThat(machineIds).doesNotHaveDuplicates();

        assertThatThrownBy(() -> engine.fork("origin", List.of("origin-1")))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("already exists");
        for (String n : List.of("origin", "origin-1", "origin-2")) {
            engine.remove(n, true);
        }
    }
}
