package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.Progress;
import dev.airlock.local.LocalSandboxService;
import dev.airlock.service.CreateSpec;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * What a command in a real sandbox sees and returns, checked through the daemon's sandbox service
 * (in this process): the sandbox's create-time environment reaches every command without the
 * command passing it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class SandboxBehaviourTest {
    /** The runtime this run of the suite exercises: microvm or container. */
    abstract String runtime();

    private AirlockDirs dirs;
    private LocalSandboxService service;
    private SandboxEngine engine;

    /** Whether this run's microVMs start from VM templates (the default) or boot cold. */
    boolean templates() {
        return true;
    }

    /** Checks on how the suite's sandbox came up, before any test runs. */
    void started(SandboxEngine engine, Sandbox sandbox) {}

    @BeforeAll
    void boot() {
        TestHost.ready();
        dirs = TestHost.isolated("behaviour-" + runtime());
        service = Engines.service(dirs, Progress.STDERR, templates());
        engine = service.engine();
        service.create(CreateSpec.builder()
                .name("behaviour")
                .runtime(runtime())
                .env(Map.of("SANDBOX_WIDE", "yes"))
                .build());
        service.start("behaviour");
        started(engine, engine.inspect("behaviour"));
    }

    @AfterAll
    void remove() {
        service.remove("behaviour", true);
        service.close();
        TestHost.cleanUp(dirs);
    }

    record Run(ExitStatus status, String out, String err) {}

    /** A guest session through the service, as every front end gets one. */
    private GuestChannel session() throws Exception {
        return service.session("behaviour").channel();
    }

    private Run run(ExecSpec spec) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (GuestChannel ch = session()) {
            ExitStatus st = ch.exec(spec, out, err).await();
            return new Run(st, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }
    }

    @Test
    void exitCodesAndSignalsComeBack() throws Exception {
        assertThat(run(ExecSpec.of("true")).status().exitCode()).isZero();
        assertThat(run(ExecSpec.of("sh", "-c", "exit 42")).status().exitCode()).isEqualTo(42);
        ExitStatus killed = run(ExecSpec.of("sh", "-c", "kill -9 $$")).status();
        assertThat(killed.signal()).isEqualTo(9);
        assertThat(killed.shellStatus()).isEqualTo(137);
    }

    @Test
    void stdoutAndStderrStaySeparateAndCompleteForLargeOutputs() throws Exception {
        long[] counts = new long[2];
        OutputStream countOut = new OutputStream() {
            @Override
            public void write(int b) {
                counts[0]++;
            }

            @Override
            public void write(byte[] b, int off, int len) {
                for (int i = off; i < off + len; i++) {
                    if (b[i] != 'o') {
                        throw new IllegalStateException("stderr byte on stdout");
                    }
                }
                counts[0] += len;
            }
        };
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (GuestChannel ch = session()) {
            ExitStatus st = ch.exec(
                            ExecSpec.of(
                                    "sh",
                                    "-c",
                                    "yes o | tr -d '\\n' | head -c 100000000; printf 'e%.0s' $(seq 1 1000) >&2"),
                            countOut,
                            err)
                    .await();
            assertThat(st.exitCode()).isZero();
        }
        assertThat(counts[0]).isEqualTo(100_000_000L);
        assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo("e".repeat(1000));
    }

    @Test
    void stdinStreamsIn() throws Exception {
        byte[] data = new byte[10 << 20];
        new Random(7).nextBytes(data);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GuestChannel ch = session()) {
            Execution ex =
                    ch.exec(ExecSpec.builder("sha256sum").stdin(true).build(), out, OutputStream.nullOutputStream());
            try (OutputStream in = ex.stdin()) {
                new ByteArrayInputStream(data).transferTo(in);
            }
            assertThat(ex.await().exitCode()).isZero();
        }
        assertThat(out.toString(StandardCharsets.UTF_8)).startsWith(Hashing.sha256(data) + " ");
    }

    @Test
    void aPtySessionSeesATerminalAndItsResize() throws Exception {
        CountDownLatch firstSize = new CountDownLatch(1);
        ByteArrayOutputStream out = new ByteArrayOutputStream() {
            @Override
            public synchronized void write(byte[] b, int off, int len) {
                super.write(b, off, len);
                if (toString(StandardCharsets.UTF_8).contains("24 80")) {
                    firstSize.countDown();
                }
            }
        };
        try (GuestChannel ch = session()) {
            Execution ex = ch.exec(
                    ExecSpec.builder("sh", "-c", "tty; stty size; read line; stty size")
                            .tty(24, 80)
                            .stdin(true)
                            .build(),
                    out,
                    OutputStream.nullOutputStream());
            assertThat(firstSize.await(30, TimeUnit.SECONDS))
                    .as("initial size reported")
                    .isTrue();
            ex.resize(50, 132);
            ex.stdin().write("go\n".getBytes(StandardCharsets.UTF_8));
            ex.stdin().flush();
            assertThat(ex.await().exitCode()).isZero();
        }
        String text = out.toString(StandardCharsets.UTF_8);
        assertThat(text).containsPattern("/dev/pts/[0-9]+").contains("24 80").contains("50 132");
    }

    @Test
    void filesRoundTripByteExact() throws Exception {
        byte[] data = new byte[(8 << 20) + 13];
        new Random(11).nextBytes(data);
        ByteArrayOutputStream back = new ByteArrayOutputStream();
        try (GuestChannel ch = session()) {
            ch.writeFile("/root/blob.bin", new ByteArrayInputStream(data), 0600, false);
            ch.readFile("/root/blob.bin", back);
            assertThat(ch.stat("/root/blob.bin").size()).isEqualTo(data.length);
        }
        assertThat(back.toByteArray()).isEqualTo(data);
        assertThat(run(ExecSpec.of("sha256sum", "/root/blob.bin")).out()).startsWith(Hashing.sha256(data));
    }

    @Test
    void envCwdAndUserApply() throws Exception {
        Run r = run(ExecSpec.builder("sh", "-c", "echo $FOO $SANDBOX_WIDE; pwd; id -un; echo $HOME")
                .env(Map.of("FOO", "bar"))
                .cwd("/tmp")
                .user("airlock")
                .build());
        assertThat(r.out()).isEqualTo("bar yes\n/tmp\nairlock\n/home/airlock\n");
        assertThat(run(ExecSpec.of("id", "-u")).out().strip()).isEqualTo("0");
    }

    @Test
    void aTimeoutKillsTheCommand() throws Exception {
        long start = System.nanoTime();
        ExitStatus st = run(ExecSpec.builder("sleep", "60")
                        .timeout(Duration.ofSeconds(2))
                        .build())
                .status();
        assertThat(st.timedOut()).isTrue();
        assertThat(st.signal()).isEqualTo(9);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
    }

    @Test
    void commandNotFoundIsItsOwnError() {
        assertThatThrownBy(() -> run(ExecSpec.of("no-such-command-xyz")))
                .isInstanceOf(CommandNotFoundException.class)
                .hasMessageContaining("no-such-command-xyz");
    }

    @Test
    void theGuestHasItsOwnHostnameAndOnlyLoopback() throws Exception {
        assertThat(run(ExecSpec.of("hostname")).out().strip()).isEqualTo("behaviour");
        // the kernel's own interface list (gVisor's sysfs has no /sys/class/net)
        assertThat(run(ExecSpec.of("sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"))
                        .out()
                        .strip())
                .isEqualTo("lo");
    }
}
