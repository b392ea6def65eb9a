package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.ProcessExit;
import dev.airlock.host.Progress;
import dev.airlock.local.LocalSandboxService;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ExecRequest;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Pause/resume and fork of gVisor sandboxes, by {@code runsc checkpoint} and {@code restore}: the
 * same promises as a microVM's (a counting process and its files survive, clones diverge and get
 * their own names), and a {@code --network nat} sandbox, whose sockets are the host's, is refused
 * with a reason. (Templates are a microVM thing: a gVisor sandbox starts in about the time a
 * restore would take.)
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GvisorSnapshotTest {
    /** A process whose state lives only in its memory, written out every 100 ms by rename. */
    private static final String COUNTER =
            "nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done'"
                    + " >/dev/null 2>&1 &"
                    + " echo $!";

    private AirlockDirs dirs;
    private LocalSandboxService service;
    private SandboxEngine engine;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("gvisor-snapshot");
        service = Engines.service(dirs, Progress.STDERR, true);
        engine = service.engine();
    }

    @AfterAll
    void tearDown() {
        for (Sandbox s : engine.list()) {
            service.remove(s.id(), true);
        }
        service.close();
        TestHost.cleanUp(dirs);
    }

    private Sandbox startNew(String name) {
        Sandbox s = engine.create(
                CreateOptions.builder().name(name).runtime("gvisor").build());
        return engine.start(s.name());
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

    @Test
    void pauseEndsTheSentryAndResumeContinuesItsProcesses() throws Exception {
        Sandbox s = startNew("pausing");
        String pid = sh(s, COUNTER);
        sh(s, "echo kept > /root/file");
        long before = counterPast(s, 0);
        long sentry = engine.inspect(s.id()).vmmPid();

        Sandbox paused = engine.pause(s.name());
        assertThat(paused.state()).isEqualTo(SandboxState.PAUSED);
        assertThat(ProcessExit.hasExited(sentry)).isTrue();
        assertThatThrownBy(() -> engine.start("pausing")).hasMessageContaining("airlock resume pausing");

        Sandbox resumed = engine.resume(s.name());
        assertThat(resumed.state()).isEqualTo(SandboxState.RUNNING);
        assertThat(engine.origin(resumed)).isEqualTo("resumed");
        // the same process, with the count it had in memory (its /tmp is gVisor's tmpfs, saved too)
        assertThat(sh(resumed, "kill -0 " + pid + " && echo alive")).isEqualTo("alive");
        assertThat(counterPast(resumed, before)).isGreaterThan(before);
        assertThat(sh(resumed, "cat /root/file; hostname")).isEqualTo("kept\npausing");

        // paused, then stopped: its files are on the host layer, so a start finds them
        engine.pause(s.name());
        assertThat(engine.stop(s.name(), Duration.ofSeconds(5)).state()).isEqualTo(SandboxState.STOPPED);
        Sandbox again = engine.start(s.name());
        assertThat(sh(again, "cat /root/file")).isEqualTo("kept");
        engine.remove(s.name(), true);
    }

    @Test
    void forkClonesRunningProcessesAndFilesAndTheClonesDiverge() throws Exception {
        Sandbox src = startNew("origin");
        String pid = sh(src, COUNTER);
        sh(src, "echo from-origin > /root/data");
        long atFork = counterPast(src, 0);

        List<Sandbox> clones = engine.fork("origin", List.of("origin-1", "origin-2"));
        assertThat(clones).extracting(Sandbox::name).containsExactly("origin-1", "origin-2");
        for (Sandbox c : Stream.concat(Stream.of(src), clones.stream()).toList()) {
            // every one of them (the source too) runs the counter process, from where it was
            assertThat(sh(c, "kill -0 " + pid + " && echo alive")).isEqualTo("alive");
            assertThat(counterPast(c, atFork)).isGreaterThan(atFork);
            assertThat(sh(c, "cat /root/data")).isEqualTo("from-origin");
        }
        Sandbox one = clones.get(0);
        Sandbox two = clones.get(1);
        assertThat(engine.origin(one)).isEqualTo("fork of origin");
        assertThat(sh(one, "hostname")).isEqualTo("origin-1");
        assertThat(sh(two, "hostname")).isEqualTo("origin-2");
        assertThat(sh(one, "cat /etc/machine-id")).isNotEqualTo(sh(two, "cat /etc/machine-id"));
        sh(one, "echo changed-in-1 > /root/data; kill " + pid);
        assertThat(sh(two, "cat /root/data")).isEqualTo("from-origin");
        assertThat(sh(src, "cat /root/data")).isEqualTo("from-origin");
        assertThat(sh(two, "kill -0 " + pid + " && echo alive")).isEqualTo("alive");
        // gVisor's random device reads the host's for every read: clones never share a stream
        String urandom = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'";
        assertThat(sh(one, urandom)).isNotEqualTo(sh(two, urandom));
        for (String n : List.of("origin", "origin-1", "origin-2")) {
            engine.remove(n, true);
        }
    }

    @Test
    void aNatSandboxIsNotCheckpointedAndSaysWhy() throws Exception {
        // through the service, which sets up the NAT's host firewall before the start
        service.create(CreateSpec.builder()
                .name("natted")
                .runtime("gvisor")
                .network("nat")
                .build());
        service.start("natted");
        assertThatThrownBy(() -> service.pause("natted"))
                .isInstanceOfSatisfying(
                        SandboxException.class, e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.CONFLICT))
                .hasMessageContaining("--network nat")
                .hasMessageContaining("cannot checkpoint");
        assertThat(service.inspect("natted").state()).isEqualTo(SandboxState.RUNNING);
        assertThat(service.exec("natted", new ExecRequest(List.of("echo", "still"), null, null, null, null, null))
                        .stdout())
                .isEqualTo("still\n");
        service.remove("natted", true);
    }
}
