package dev.airlock.daemon;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.ProcessExit;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Before {@code airlock serve} runs its daemon: a daemon the CLI started on demand for the same
 * data directory is stopped (its sandboxes keep running; the new daemon re-attaches them), while
 * one that serves TCP listeners of its own (another {@code serve}) is left alone and refused.
 */
public final class DaemonTakeover {
    private DaemonTakeover() {}

    public static void replaceOnDemandDaemon(AirlockDirs dirs) {
        Optional<ProcessHandle> running = running(dirs);
        if (running.isEmpty()) {
            return;
        }
        ProcessHandle p = running.get();
        Path listen = dirs.runtime().resolve(Daemon.LISTEN_FILE);
        if (Files.exists(listen)) {
            String where;
            try {
                where = Files.readString(listen).strip().replace('\n', ' ');
            } catch (IOException e) {
                where = "TCP";
            }
            throw SandboxException.conflict("another airlock serve (pid " + p.pid() + ") already serves " + dirs.data()
                    + " on " + where + "; stop it first");
        }
        p.destroy();
        if (!ProcessExit.await(p.pid(), Duration.ofSeconds(10))) {
            p.destroyForcibly();
            ProcessExit.await(p.pid(), Duration.ofSeconds(5));
        }
    }

    private static Optional<ProcessHandle> running(AirlockDirs dirs) {
        try {
            long pid = Long.parseLong(
                    Files.readString(dirs.runtime().resolve("airlockd.pid")).strip());
            return ProcessHandle.of(pid)
                    .filter(ProcessHandle::isAlive)
                    .filter(p -> p.info().command().orElse("").contains("java"));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }
}
