package dev.airlock.cli;

import dev.airlock.guest.GuestChannelClosedException;
import dev.airlock.guest.GuestException;
import dev.airlock.net.HostProxies;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.setup.Setup;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.util.OptionalInt;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code airlock} command: Docker/Podman habits over microVM sandboxes. */
@Command(
        name = "airlock",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Hardware-isolated sandboxes for AI agents.",
        subcommands = {
            SetupCommand.class,
            DoctorCommand.class,
            DaemonCommand.class,
            ServeCommand.class,
            ImageCommand.class,
            SandboxCommands.Run.class,
            SandboxCommands.Create.class,
            SandboxCommands.Start.class,
            SandboxCommands.Exec.class,
            SandboxCommands.Shell.class,
            SandboxCommands.Ps.class,
            SandboxCommands.Inspect.class,
            SandboxCommands.Logs.class,
            SandboxCommands.Stop.class,
            SandboxCommands.Kill.class,
            SandboxCommands.Pause.class,
            SandboxCommands.Resume.class,
            SandboxCommands.Fork.class,
            SandboxCommands.Rm.class,
            SandboxCommands.Stats.class,
            SandboxCommands.Cp.class,
            NetworkCommands.class,
            PortCommands.class,
            AgentCommands.class,
            WorkspaceCommands.Diff.class,
            WorkspaceCommands.Pull.class,
            WorkspaceCommands.Commit.class,
            WorkspaceCommands.Cache.class,
            McpCommand.class,
            E2bCommand.class,
        })
public final class Main {
    /** Exit code for Airlock's own errors, as Docker uses 125 for its own. */
    static final int EXIT_AIRLOCK_ERROR = 125;

    public static void main(String[] args) {
        // Before any JDK HTTP client exists: pulls send HTTPS_PROXY's credentials on CONNECT.
        HostProxies.allowBasicForTunnels();
        int code;
        try {
            OptionalInt quick = QuickCommands.run(args);
            code = quick.isPresent() ? quick.getAsInt() : execute(args);
        } catch (Throwable t) {
            // A bug, not a user mistake: report it whole. Exit regardless, or the HTTP client's
            // threads would keep a finished CLI alive.
            System.err.println("airlock: internal error (please report it with this trace):");
            t.printStackTrace();
            code = EXIT_AIRLOCK_ERROR;
        }
        System.exit(code);
    }

    static int execute(String... args) {
        CommandLine cl = new CommandLine(new Main());
        // run IMAGE ARG...: everything after the image is the command's, dashes included (Docker's rule)
        java.util.Objects.requireNonNull(cl.getSubcommands().get("run")).setStopAtPositional(true);
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            String message = userMessage(e);
            if (message == null) {
                throw e;
            }
            commandLine.getErr().println("airlock: error: " + message);
            return e instanceof SandboxException se ? se.kind().exitCode() : EXIT_AIRLOCK_ERROR;
        });
        return cl.execute(args);
    }

    /**
     * What to tell the user about an error that is not a bug: Airlock's own errors say what was
     * wrong and what to do; a file the user named that is missing or unreadable, or a session
     * that ended under a command (the sandbox was stopped, the daemon restarted), is said in
     * words. Null for anything else: a bug, reported with its trace.
     */
    static @Nullable String userMessage(Throwable e) {
        if (e instanceof SandboxException
                || e instanceof GuestException
                || e instanceof Setup.SetupException
                || e instanceof IllegalArgumentException) {
            return e.getMessage();
        }
        if (e instanceof GuestChannelClosedException) {
            return "the session with the sandbox ended before the command finished (" + e.getMessage()
                    + "); the sandbox may have been stopped or the daemon restarted: check with airlock ps -a";
        }
        if (e instanceof NoSuchFileException f) {
            return "no such file or directory: " + f.getFile();
        }
        if (e instanceof AccessDeniedException f) {
            return "permission denied: " + f.getFile();
        }
        if (e instanceof FileSystemException f) {
            return f.getFile() + ": "
                    + (f.getReason() != null ? f.getReason() : f.getClass().getSimpleName());
        }
        if (e instanceof UncheckedIOException u) {
            String inner = u.getCause() != null ? userMessage(u.getCause()) : null;
            return inner != null ? inner : u.getMessage();
        }
        if (e instanceof IOException) {
            return e.getMessage() != null ? e.getMessage() : e.toString();
        }
        return null;
    }

    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return "airlock " + (v == null ? "dev" : v);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {version()};
        }
    }
}
