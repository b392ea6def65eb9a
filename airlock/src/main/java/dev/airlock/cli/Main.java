package dev.airlock.cli;

import dev.airlock.guest.GuestException;
import dev.airlock.image.ImageException;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.setup.Setup;
import dev.airlock.vmm.VmmException;
import java.io.UncheckedIOException;
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
            WorkspaceCommands.Diff.class,
            WorkspaceCommands.Pull.class,
            WorkspaceCommands.Commit.class,
            WorkspaceCommands.Cache.class,
        })
public final class Main {
    /** Exit code for Airlock's own errors, as Docker uses 125 for its own. */
    static final int EXIT_AIRLOCK_ERROR = 125;

    public static void main(String[] args) {
        int code;
        try {
            code = execute(args);
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
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (isUserFacing(e)) {
                commandLine.getErr().println("airlock: error: " + e.getMessage());
                return EXIT_AIRLOCK_ERROR;
            }
            throw e;
        });
        return cl.execute(args);
    }

    static boolean isUserFacing(Throwable e) {
        return e instanceof SandboxException
                || e instanceof ImageException
                || e instanceof VmmException
                || e instanceof GuestException
                || e instanceof Setup.SetupException
                || e instanceof UncheckedIOException
                || e instanceof IllegalArgumentException;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"airlock " + (v == null ? "dev" : v)};
        }
    }
}
