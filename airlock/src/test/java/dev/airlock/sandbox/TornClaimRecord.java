package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The half both warm pools' torn-record tests share: a claim makes one durable record write, the
 * create's, and keeps that created record beside the running one, which is not fsynced. A host
 * crash is simulated by killing the process that runs the sandbox (as the crash ends it) and
 * emptying the running record (as a rename committed before its data would leave it).
 */
final class TornClaimRecord {
    private TornClaimRecord() {}

    /** Runs a script in a sandbox and gives its output; the test's own, so each backend's way of running it stays. */
    @FunctionalInterface
    interface Shell {
        String run(Sandbox sandbox, String script) throws Exception;
    }

    /**
     * Checks that {@code claimed} (which wrote "kept" to /root/own) has the created record kept
     * beside its running one, kills {@code runner}, empties the running record, and checks that the
     * sandbox then reads as created, starts again under its own name with its own layer
     * ({@code restartOrigin} checks how it started). Gives the restarted sandbox: whether its start
     * kept a durable copy beside its record is the backend's to say, so the caller checks it.
     */
    static Sandbox crashTearAndRestart(
            SandboxEngine engine,
            Path dir,
            Sandbox claimed,
            ProcessHandle runner,
            Consumer<String> restartOrigin,
            Shell sh)
            throws Exception {
        String name = claimed.name();
        assertThat(dir.resolve("sandbox.json.durable")).isRegularFile();
        assertThat(engine.inspect(name).state()).isEqualTo(SandboxState.RUNNING);

        tearByHostCrash(runner, dir);

        Sandbox after = engine.inspect(name);
        assertThat(after.id()).isEqualTo(claimed.id());
        assertThat(after.state()).isEqualTo(SandboxState.CREATED);
        Sandbox again = engine.start(name);
        restartOrigin.accept(engine.origin(again));
        assertThat(sh.run(again, "hostname; cat /root/own")).isEqualTo(name + "\nkept");
        assertThat(engine.inspect(name).state()).isEqualTo(SandboxState.RUNNING);
        return again;
    }

    /** What a host crash may leave: {@code runner} gone and the running record torn (emptied). */
    static void tearByHostCrash(ProcessHandle runner, Path dir) throws Exception {
        runner.destroyForcibly();
        runner.onExit().get(30, TimeUnit.SECONDS);
        Files.write(dir.resolve("sandbox.json"), new byte[0]);
    }
}
