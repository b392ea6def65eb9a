package dev.airlock.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.backend.Backends;
import dev.airlock.backend.Boundary;
import dev.airlock.backend.Capability;
import dev.airlock.engine.Lifecycle.Operation;
import dev.airlock.engine.Lifecycle.Verdict;
import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.sandbox.CreateOptions;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.testing.TestHost;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine's lifecycle rules, every state against every operation, on a fake backend (the real
 * agent as a host process, see {@link FakeBackend}), so the whole table runs in seconds. Each
 * operation either does what it says, or does nothing where it has nothing to do, or is refused
 * with a CONFLICT that leaves the sandbox as it was.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LifecycleTest {
    private AirlockDirs dirs;
    private FakeBackend fake;
    private SandboxEngine engine;
    private final AtomicInteger names = new AtomicInteger();

    @BeforeAll
    void setUp() {
        TestHost.ready();
        dirs = TestHost.isolated("lifecycle");
        fake = new FakeBackend("fake", EnumSet.of(Capability.PAUSE, Capability.FORK), null);
        engine = new SandboxEngine(
                dirs,
                new Backends(List.of(
                        fake,
                        new FakeBackend("bare", Set.of(), null),
                        new FakeBackend("missing", Set.of(), "its tools are not installed"))),
                Progress.SILENT);
    }

    @AfterAll
    void tearDown() {
        for (Sandbox s : engine.list()) {
            engine.remove(s.id(), true);
        }
        TestHost.cleanUp(dirs);
    }

    static Stream<Arguments> everyStateAndOperation() {
        List<Arguments> all = new ArrayList<>();
        for (SandboxState state : SandboxState.values()) {
            for (Operation op : Operation.values()) {
                all.add(Arguments.of(state, op));
            }
        }
        return all.stream();
    }

    /** A new sandbox on the fake backend, brought to {@code state} the way a user would. */
    private Sandbox in(SandboxState state, String runtime) {
        Sandbox s = engine.create(CreateOptions.builder()
                .runtime(runtime)
                .name("lc-" + names.incrementAndGet())
                .build());
        switch (state) {
            case CREATED -> {}
            case RUNNING -> engine.start(s.id());
            case STOPPED -> {
                engine.start(s.id());
                engine.stop(s.id(), Duration.ofSeconds(5));
            }
            case FAILED -> {
                engine.start(s.id());
                fake.crash(engine.paths(s));
            }
            case PAUSED -> {
                engine.start(s.id());
                engine.pause(s.id());
            }
        }
        Sandbox now = engine.inspect(s.id());
        assertThat(now.state()).as("set-up").isEqualTo(state);
        return now;
    }

    @ParameterizedTest(name = "{1} on a {0} sandbox")
    @MethodSource("everyStateAndOperation")
    void everyOperationInEveryStateDoesWhatTheTableSays(SandboxState state, Operation op) throws Exception {
        Sandbox s = in(state, "fake");
        Verdict verdict = Lifecycle.verdict(op, state);
        if (verdict == Verdict.REFUSED) {
            assertThatThrownBy(() -> apply(op, s))
                    .isInstanceOfSatisfying(
                            SandboxException.class, e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.CONFLICT))
                    .hasMessageContaining(s.name());
            assertThat(engine.inspect(s.id()).state())
                    .as("a refused %s changes nothing", op)
                    .isEqualTo(state);
            return;
        }
        apply(op, s);
        switch (op) {
            case START, RESUME -> assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.RUNNING);
            case STOP ->
                assertThat(engine.inspect(s.id()).state())
                        .isEqualTo(verdict == Verdict.NOTHING ? state : SandboxState.STOPPED);
            case KILL -> assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.STOPPED);
            case PAUSE -> assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.PAUSED);
            case FORK -> {
                assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.RUNNING);
                assertThat(engine.inspect(s.name() + "-clone").state()).isEqualTo(SandboxState.RUNNING);
                assertThat(engine.origin(engine.inspect(s.name() + "-clone"))).isEqualTo("fork of " + s.name());
            }
            case REMOVE, FORCE_REMOVE -> {
                assertThatThrownBy(() -> engine.inspect(s.id()))
                        .isInstanceOfSatisfying(
                                SandboxException.class,
                                e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.NOT_FOUND));
                assertThat(fake.running(null, engine.paths(s))).isFalse();
            }
            case SESSION -> {
                // apply() pinged the agent through the session
            }
        }
    }

    private void apply(Operation op, Sandbox s) throws Exception {
        switch (op) {
            case START -> engine.start(s.id());
            case STOP -> engine.stop(s.id(), Duration.ofSeconds(5));
            case KILL -> engine.kill(s.id());
            case PAUSE -> engine.pause(s.id());
            case RESUME -> engine.resume(s.id());
            case FORK -> engine.fork(s.id(), List.of(s.name() + "-clone"));
            case REMOVE -> engine.remove(s.id(), false);
            case FORCE_REMOVE -> engine.remove(s.id(), true);
            case SESSION -> {
                try (GuestChannel ch = engine.connect(engine.inspect(s.id()), Duration.ofSeconds(10))) {
                    assertThat(ch.ping()).isPositive();
                }
            }
        }
    }

    /**
     * A look at the sandboxes (the daemon's watchdog, a list) reads a record that says running,
     * then a stop runs to its end, then the look finds the process gone: that is the stop's doing,
     * not a crash, and the record stays STOPPED (it once became FAILED: CI, stop 24).
     */
    @Test
    void aStopThatEndsBetweenALooksReadAndItsProcessCheckIsNotTakenForACrash() {
        Sandbox s = in(SandboxState.RUNNING, "fake");
        fake.beforeNextRunningCheck(() -> engine.stop(s.id(), Duration.ofSeconds(5)));
        assertThat(engine.list().stream().filter(x -> x.id().equals(s.id())).findFirst())
                .get()
                .extracting(Sandbox::state)
                .isEqualTo(SandboxState.STOPPED);
        assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.STOPPED);
        assertThat(engine.inspect(s.id()).error()).isNull();
    }

    @Test
    void anOperationTheBackendCannotDoIsRefusedWhateverTheState() {
        Sandbox s = in(SandboxState.RUNNING, "bare");
        assertThatThrownBy(() -> engine.pause(s.id()))
                .isInstanceOfSatisfying(
                        SandboxException.class, e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.CONFLICT))
                .hasMessageContaining("pause and resume is not available")
                .hasMessageContaining("bare");
        assertThatThrownBy(() -> engine.fork(s.id(), List.of("bare-clone")))
                .hasMessageContaining("fork is not available");
        assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.RUNNING);
    }

    @Test
    void aBackendThatCannotRunHereRefusesNewSandboxesAndTheOthersKeepWorking() {
        assertThatThrownBy(() ->
                        engine.create(CreateOptions.builder().runtime("missing").build()))
                .isInstanceOfSatisfying(
                        SandboxException.class, e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.UNAVAILABLE))
                .hasMessageContaining("its tools are not installed")
                .hasMessageContaining("--runtime fake");
        assertThat(in(SandboxState.RUNNING, "fake").state()).isEqualTo(SandboxState.RUNNING);
        assertThatThrownBy(() -> engine.create(
                        CreateOptions.builder().runtime("nonesuch").build()))
                .isInstanceOfSatisfying(
                        SandboxException.class, e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.INVALID))
                .hasMessageContaining("unknown runtime 'nonesuch'");
    }

    @Test
    void theDefaultRuntimeIsTheStrongestIsolationThatWorksHereUnlessOverridden() {
        List<dev.airlock.backend.Backend> host = List.of(
                new FakeBackend("vm", Set.of(), "KVM does not run a guest here", Boundary.HARDWARE_VIRTUALIZATION),
                new FakeBackend("emulated", Set.of(), null, Boundary.SOFTWARE_EMULATION),
                new FakeBackend("ns", Set.of(), null, Boundary.NAMESPACES),
                new FakeBackend("usk", Set.of(), null, Boundary.USER_SPACE_KERNEL));
        Backends.DefaultRuntime d = new Backends(host).defaultRuntime();
        assertThat(d.name()).isEqualTo("usk");
        assertThat(d.reason())
                .contains("user-space kernel")
                .contains("ns (namespaces)")
                .contains("vm: KVM does not run a guest here");
        // with KVM working the VM wins; with nothing stronger, emulation comes after namespaces
        assertThat(new Backends(List.of(
                                new FakeBackend("ns", Set.of(), null, Boundary.NAMESPACES),
                                new FakeBackend("vm", Set.of(), null, Boundary.HARDWARE_VIRTUALIZATION)))
                        .defaultName())
                .isEqualTo("vm");
        assertThat(new Backends(List.of(
                                new FakeBackend("emulated", Set.of(), null, Boundary.SOFTWARE_EMULATION),
                                new FakeBackend("ns", Set.of(), null, Boundary.NAMESPACES)))
                        .defaultName())
                .isEqualTo("ns");
        assertThat(new Backends(host, "emulated").defaultRuntime())
                .isEqualTo(new Backends.DefaultRuntime("emulated", "AIRLOCK_RUNTIME=emulated"));
        assertThatThrownBy(() -> new Backends(host, "docker").defaultName())
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("AIRLOCK_RUNTIME=docker is not a runtime")
                .hasMessageContaining("usk");
    }

    @Test
    void aReferenceThatIsNotANameIsRefusedBeforeItIsLookedUp() {
        Sandbox s = in(SandboxState.RUNNING, "fake");
        assertThatThrownBy(() -> engine.remove(s.name() + "?force=true", true))
                .isInstanceOfSatisfying(
                        SandboxException.class, e -> assertThat(e.kind()).isEqualTo(SandboxException.Kind.INVALID))
                .hasMessageContaining("is not a sandbox name or id");
        assertThat(engine.inspect(s.id()).state()).isEqualTo(SandboxState.RUNNING);
    }
}
