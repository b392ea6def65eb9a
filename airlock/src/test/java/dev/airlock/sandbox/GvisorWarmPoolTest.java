package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.oci.ContainerCgroup;
import dev.airlock.oci.OciContainers;
import dev.airlock.oci.OciSandboxes;
import dev.airlock.testing.Engines;
import dev.airlock.testing.TestHost;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The gVisor warm pool: started sandboxes kept ready per configuration; a create claims one and
 * gives it its name; the claim refills the pool; pooled sandboxes are not sandboxes until claimed
 * and go when the pool closes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GvisorWarmPoolTest {
    private AirlockDirs dirs;
    private SandboxEngine engine;

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("gvisor-pool");
        engine = Engines.engine(dirs, Progress.STDERR, true);
        Engines.gvisor(engine).enableWarmPool(1, 4096);
    }

    @AfterAll
    void tearDown() throws Exception {
        for (Sandbox s : engine.list()) {
            engine.remove(s.id(), true);
        }
        Engines.gvisor(engine).closeWarmPool(Duration.ofSeconds(60));
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
            assertThat(st.exitCode())
                    .as(script + ": " + err.toString(StandardCharsets.UTF_8))
                    .isZero();
        }
        return out.toString(StandardCharsets.UTF_8).strip();
    }

    @Test
    void aCreateClaimsAStartedSandboxAndThePoolIsRefilled() throws Exception {
        Sandbox first = startNew("pool-a");
        assertThat(engine.origin(first)).doesNotContain("pool");
        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        // the pooled sandbox is not a sandbox until claimed
        assertThat(engine.list()).extracting(Sandbox::name).containsExactly("pool-a");

        Sandbox claimed = startNew("pool-b");
        assertThat(engine.origin(claimed)).endsWith(", pool");
        assertThat(sh(claimed, "hostname")).isEqualTo("pool-b");
        // a pooled sandbox gets its own machine-id at the claim (a plain start has none to share)
        String machineId = sh(claimed, "cat /etc/machine-id");
        assertThat(machineId).matches("[0-9a-f]{32}");
        sh(claimed, "echo mine > /root/own");
        assertThat(sh(first, "cat /root/own 2>/dev/null || echo absent")).isEqualTo("absent");

        // the claim started a refill: the next create claims again
        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        Sandbox third = startNew("pool-c");
        assertThat(engine.origin(third)).endsWith(", pool");
        assertThat(sh(third, "hostname; cat /root/own 2>/dev/null || echo absent"))
                .isEqualTo("pool-c\nabsent");
        assertThat(sh(third, "cat /etc/machine-id")).matches("[0-9a-f]{32}").isNotEqualTo(machineId);

        // stopped and started again, a claimed sandbox starts from its own layer with its own name
        engine.stop("pool-b", Duration.ofSeconds(10));
        Sandbox again = engine.start("pool-b");
        assertThat(engine.origin(again)).doesNotContain("pool");
        assertThat(sh(again, "cat /root/own; hostname")).isEqualTo("mine\npool-b");

        // closing the pool ends the ready one and leaves no directory behind
        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        Engines.gvisor(engine).closeWarmPool(Duration.ofSeconds(60));
        try (var d = Files.list(dirs.sandboxes())) {
            assertThat(d.filter(p -> Files.exists(p.resolve("pooled-gvisor"))).toList())
                    .isEmpty();
        }
        assertThat(engine.list()).extracting(Sandbox::name).containsExactlyInAnyOrder("pool-a", "pool-b", "pool-c");
        Engines.gvisor(engine).enableWarmPool(1, 4096);
    }

    /**
     * The pool keeps the session each ready sandbox was filled through; a pooled Sentry that died
     * while it waited (its session closed with it) is not handed out: the create starts anew.
     */
    @Test
    void aPooledSandboxThatDiedWhileReadyIsNotHandedOut() throws Exception {
        startNew("dead-a");
        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        List<Path> pooled;
        try (var d = Files.list(dirs.sandboxes())) {
            pooled = d.filter(p -> Files.exists(p.resolve("pooled-gvisor"))).toList();
        }
        assertThat(pooled).isNotEmpty();
        for (Path dir : pooled) {
            ProcessHandle sentry =
                    OciContainers.sandboxProcess(OciSandboxes.containerDir(dir)).orElseThrow();
            sentry.destroyForcibly();
            sentry.onExit().get(30, TimeUnit.SECONDS);
        }

        Sandbox b = startNew("dead-b");
        assertThat(engine.origin(b)).doesNotContain("pool");
        assertThat(sh(b, "hostname")).isEqualTo("dead-b");
    }

    /**
     * A claim makes one durable record write, the create's: the start's running record is not
     * fsynced and the created one is kept beside it. A host crash that tears the running record
     * (simulated: the Sentry killed, as the crash ends it, and the record emptied, as a rename
     * committed before its data would leave it) leaves the created record, from which the
     * sandbox starts again with its own layer and name. That start, a plain one, does not fsync
     * its running record either: the created record stays the fallback, and a second tear
     * leaves it again.
     */
    @Test
    void aClaimedSandboxsRecordTornByAHostCrashFallsBackToItsCreatedRecord() throws Exception {
        startNew("torn-a");
        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        Sandbox claimed = startNew("torn-b");
        assertThat(engine.origin(claimed)).endsWith(", pool");
        sh(claimed, "echo kept > /root/own");
        Path dir = dirs.sandboxes().resolve(claimed.id());
        ProcessHandle sentry =
                OciContainers.sandboxProcess(OciSandboxes.containerDir(dir)).orElseThrow();
        TornClaimRecord.crashTearAndRestart(
                engine, dir, claimed, sentry, origin -> assertThat(origin).doesNotContain("pool"), this::sh);
        // A plain gVisor start also renames its running record into place without an fsync.
        assertThat(dir.resolve("sandbox.json.durable")).isRegularFile();

        TornClaimRecord.tearByHostCrash(
                OciContainers.sandboxProcess(OciSandboxes.containerDir(dir)).orElseThrow(), dir);
        assertThat(engine.inspect("torn-b").state()).isEqualTo(SandboxState.CREATED);
        Sandbox third = engine.start("torn-b");
        assertThat(sh(third, "hostname; cat /root/own")).isEqualTo("torn-b\nkept");
        assertThat(engine.inspect("torn-b").state()).isEqualTo(SandboxState.RUNNING);
    }

    /**
     * A sandbox runs within its own CPU quota (1 CPU here), started anew or claimed from the pool,
     * and sees 2 CPUs (the Sentry shows at least 2 with {@code --cpu-num-from-quota}).
     */
    @Test
    void aStartedSandboxRunsWithinItsOwnCpuQuota() throws Exception {
        Sandbox plain = startNew("cpu-a");
        assertThat(engine.origin(plain)).doesNotContain("pool");
        assertThat(plain.resources().cpus()).isEqualTo(1);
        assertThat(cpuQuotaMicros(plain)).isEqualTo(100_000);
        assertThat(sh(plain, "nproc")).isEqualTo("2");

        Engines.gvisor(engine).awaitWarmPool(Duration.ofSeconds(120));
        Sandbox claimed = startNew("cpu-b");
        assertThat(engine.origin(claimed)).endsWith(", pool");
        assertThat(cpuQuotaMicros(claimed)).isEqualTo(100_000);
        assertThat(sh(claimed, "nproc")).isEqualTo("2");
    }

    private static long cpuQuotaMicros(Sandbox s) {
        return new ContainerCgroup(ContainerCgroup.parentForThisProcess() + "/" + OciSandboxes.containerId(s))
                .cpuQuotaMicros()
                .orElseThrow();
    }
}
