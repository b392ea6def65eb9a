package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.backend.WarmPool;
import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** A create that claims a pre-restored VM from the warm pool gets its own identity and a working sandbox. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WarmPoolTest {
    private AirlockDirs dirs;
    private SandboxEngine engine;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("pool");
        engine = Engines.engine(dirs, Progress.STDERR, true);
        Engines.microvm(engine).enableWarmPool(1, 4096);
    }

    @AfterAll
    void tearDown() throws Exception {
        for (Sandbox s : engine.list()) {
            engine.remove(s.id(), true);
        }
        Engines.microvm(engine).closeWarmPool(Duration.ofSeconds(120));
        TestHost.cleanUp(dirs);
    }

    private Sandbox startNew(String name) {
        Sandbox s = engine.create(
                CreateOptions.builder().name(name).runtime("microvm").build());
        return engine.start(s.name());
    }

    private String sh(Sandbox s, String script) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GuestChannel ch = engine.connect(engine.inspect(s.id()), Duration.ofSeconds(30))) {
            ExitStatus st = ch.exec(ExecSpec.of("sh", "-c", script), out, OutputStreamSink.INSTANCE)
                    .await();
            assertThat(st.exitCode()).isZero();
        }
        return out.toString(StandardCharsets.UTF_8).strip();
    }

    private static final class OutputStreamSink {
        static final java.io.OutputStream INSTANCE = java.io.OutputStream.nullOutputStream();
    }

    @Test
    void aCreateClaimsAPooledVmAndThePoolIsRefilled() throws Exception {
        Sandbox first = startNew("pool-a");
        assertThat(engine.origin(first)).startsWith("template ");
        Engines.microvm(engine).awaitWarmPool(Duration.ofSeconds(180));
        // The pooled VM is not a sandbox until claimed.
        assertThat(engine.list()).extracting(Sandbox::name).containsExactly("pool-a");

        Sandbox claimed = startNew("pool-b");
        assertThat(engine.origin(claimed)).startsWith("pool, template ");
        assertThat(sh(claimed, "hostname")).isEqualTo("pool-b");
        Instant before = Instant.now();
        Instant guest = Instant.ofEpochSecond(0, Long.parseLong(sh(claimed, "date +%s%N")));
        assertThat(guest).isBetween(before.minusMillis(500), Instant.now().plusMillis(500));
        String urandom = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'";
        assertThat(sh(claimed, urandom)).isNotEqualTo(sh(first, urandom));
        sh(claimed, "echo mine > /root/own");
        assertThat(sh(first, "cat /root/own 2>/dev/null || echo absent")).isEqualTo("absent");

        // The claim started a refill: the next create claims again.
        Engines.microvm(engine).awaitWarmPool(Duration.ofSeconds(180));
        Sandbox third = startNew("pool-c");
        assertThat(engine.origin(third)).startsWith("pool, template ");
        assertThat(sh(third, "hostname; cat /root/own 2>/dev/null || echo absent"))
                .isEqualTo("pool-c\nabsent");

        // Stopped and started again, a pooled sandbox boots from its own disk like any other.
        engine.stop("pool-b", Duration.ofSeconds(10));
        Sandbox again = engine.start("pool-b");
        assertThat(engine.origin(again)).isEqualTo("cold");
        assertThat(sh(again, "cat /root/own")).isEqualTo("mine");
        assertThat(Files.exists(Engines.microvm(engine).templateDir())).isTrue();
    }

    /**
     * A claim starts its refill after a short delay; closing the pool then waits for that restore
     * and ends it. (The close used to hold the lock the restore needs: it waited out its whole
     * timeout, and the restore finished after the sweep, leaving a pooled VM running.)
     */
    @Test
    void closingThePoolRightAfterAClaimEndsTheRefillItWaitsFor() throws Exception {
        startNew("close-a");
        Engines.microvm(engine).awaitWarmPool(Duration.ofSeconds(180));
        Sandbox claimed = startNew("close-b");
        assertThat(engine.origin(claimed)).startsWith("pool, template ");
        long t0 = System.nanoTime();
        try {
            Engines.microvm(engine).closeWarmPool(Duration.ofSeconds(120));
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(60));
            // Nothing but the sandboxes remains: no pooled directory, none a late restore refilled.
            try (Stream<Path> dirsLeft = Files.list(dirs.sandboxes())) {
                assertThat(dirsLeft.filter(Files::isDirectory).toList())
                        .allSatisfy(d -> assertThat(d.resolve("sandbox.json")).exists());
            }
            assertThat(WarmPool.leftovers(dirs.sandboxes())).isEmpty();
        } finally {
            Engines.microvm(engine).enableWarmPool(1, 4096);
        }
    }

    /**
     * Under TCG the guest kernel cannot measure its TSC and fell back to 100 Hz jiffies (10 ms
     * timers, a tick on every idle VM); given the host-measured rate it keeps time with the TSC,
     * at the host's pace, in a claimed VM as after a boot.
     */
    @Test
    void aClaimedVmKeepsTimeWithTheTscAtTheHostsPace() throws Exception {
        startNew("clock-a");
        Engines.microvm(engine).awaitWarmPool(Duration.ofSeconds(180));
        Sandbox s = startNew("clock-b");
        assertThat(engine.origin(s)).startsWith("pool, template ");
        String source = sh(s, "cat /sys/devices/system/clocksource/clocksource0/current_clocksource");
        if (!s.accel().equals("tcg")) {
            return; // KVM guests keep kvm-clock
        }
        assertThat(source).isEqualTo("tsc");
        assertThat(sh(s, "grep -m1 resolution /proc/timer_list")).contains(": 1 nsecs");
        // The guest's monotonic clock across a host second, bracketed by the host's own clock.
        String uptime = "cut -d' ' -f1 /proc/uptime";
        long outer0 = System.nanoTime();
        double g0 = Double.parseDouble(sh(s, uptime));
        long inner0 = System.nanoTime();
        Thread.sleep(1000);
        long inner1 = System.nanoTime();
        double g1 = Double.parseDouble(sh(s, uptime));
        long outer1 = System.nanoTime();
        // /proc/uptime has 10 ms steps: allow one at either end.
        assertThat(g1 - g0).isBetween((inner1 - inner0) / 1e9 - 0.02, (outer1 - outer0) / 1e9 + 0.02);
    }
}
