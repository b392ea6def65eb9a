package dev.airlock.cli;

import dev.airlock.service.PullResult;
import dev.airlock.service.PullSpec;
import dev.airlock.workspace.HostRepo;
import dev.airlock.workspace.WorkspaceTemplates;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Getting a sandbox's work back: diff, pull, commit; and the workspace template cache. */
final class WorkspaceCommands {
    private WorkspaceCommands() {}

    @Command(name = "diff", description = "Show what changed in a sandbox's workspace since it was created.")
    static final class Diff implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX")
        String name = "";

        @Override
        public Integer call() throws Exception {
            SandboxCommands.client().diff(name, new FileOutputStream(FileDescriptor.out));
            return 0;
        }
    }

    @Command(name = "pull", description = "Bring a sandbox's commits into the host repository as branch airlock/NAME.")
    static class Pull implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX")
        String name = "";

        @Option(names = "--branch", description = "Branch to create or fast-forward (default: airlock/SANDBOX).")
        @Nullable
        String branch;

        @Option(names = "--uncommitted", description = "Also commit the sandbox's uncommitted changes, with -m.")
        boolean uncommitted;

        @Option(
                names = {"-m", "--message"},
                description = "Message for the commit of uncommitted changes.")
        @Nullable
        String message;

        @Option(names = "--json")
        boolean json;

        boolean includeUncommitted() {
            return uncommitted;
        }

        @Override
        public Integer call() throws Exception {
            PullResult p = SandboxCommands.client().pull(name, new PullSpec(branch, includeUncommitted(), message));
            if (json) {
                Output.json(p);
            } else if (p.head() == null) {
                System.out.println("nothing to pull: the sandbox has no commits on top of "
                        + p.base().substring(0, 12));
            } else {
                System.out.println(p.branch() + ": " + p.commits() + " commit" + (p.commits() == 1 ? "" : "s")
                        + " on top of " + p.base().substring(0, 12) + " (now "
                        + p.head().substring(0, 12) + ")");
            }
            if (p.uncommittedLeft() > 0 && !includeUncommitted()) {
                System.err.println("airlock: " + p.uncommittedLeft() + " uncommitted change"
                        + (p.uncommittedLeft() == 1 ? " stays" : "s stay")
                        + " in the sandbox; include them with: airlock"
                        + " commit " + name + " -m MESSAGE");
            }
            return 0;
        }
    }

    @Command(
            name = "commit",
            description =
                    "Commit a sandbox's uncommitted changes (in the sandbox) and pull everything as airlock/NAME.")
    static final class Commit extends Pull {
        @Override
        boolean includeUncommitted() {
            return true;
        }
    }

    @Command(
            name = "workspace",
            description = "Workspace templates: setups kept per image, commands and lockfile content.",
            subcommands = {WorkspaceCommands.Ls.class, WorkspaceCommands.Prune.class})
    static final class Cache {}

    @Command(name = "ls", description = "List workspace templates.")
    static final class Ls implements Callable<Integer> {
        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            List<WorkspaceTemplates.Template> all = new WorkspaceTemplates(SandboxCommands.dirs()).list();
            if (json) {
                Output.json(all);
                return 0;
            }
            Output.table(
                    System.out,
                    List.of("KEY", "REPO", "SIZE", "CREATED", "SETUP"),
                    all.stream()
                            .map(t -> List.of(
                                    t.key().substring(0, 12),
                                    t.repo(),
                                    (t.sizeBytes() >> 20) + " MiB",
                                    ImageCommand.ago(t.created()),
                                    String.join(" && ", t.setup())))
                            .toList());
            return 0;
        }
    }

    @Command(name = "prune", description = "Delete workspace templates (all, or one repository's).")
    static final class Prune implements Callable<Integer> {
        @Option(names = "--repo", description = "Only this repository's templates.")
        @Nullable
        Path repo;

        @Override
        public Integer call() {
            String which = repo == null ? "" : HostRepo.open(repo).root().toString();
            int n = new WorkspaceTemplates(SandboxCommands.dirs()).prune(which);
            System.out.println("removed " + n + " workspace template" + (n == 1 ? "" : "s"));
            return 0;
        }
    }
}
