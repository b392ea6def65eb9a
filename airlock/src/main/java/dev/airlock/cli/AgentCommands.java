package dev.airlock.cli;

import dev.airlock.image.Image;
import dev.airlock.image.ImageStore;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.workspace.AgentPreset;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code airlock agent}: the agent presets {@code run --agent NAME} knows. */
@Command(
        name = "agent",
        description = "The known coding agents (presets) for run --workspace . --agent NAME --task TEXT.",
        subcommands = {AgentCommands.Ls.class, AgentCommands.Prepare.class})
final class AgentCommands {
    private AgentCommands() {}

    @Command(
            name = "ls",
            aliases = "list",
            description = "List the presets: the CLI each installs, the hosts it may reach, the key it needs.")
    static final class Ls implements Callable<Integer> {
        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            List<AgentPreset> presets = AgentPreset.all();
            if (json) {
                Output.json(presets);
                return 0;
            }
            ImageStore store = ImageCommand.store();
            List<List<String>> rows = new ArrayList<>();
            for (AgentPreset p : presets) {
                rows.add(List.of(
                        p.name(),
                        p.npmPackage() + (p.node() == null ? "" : " (Node " + p.node() + ")"),
                        String.join(",", p.apiHosts()),
                        p.key() + " (secret: the sandbox sees a placeholder)",
                        AgentImages.find(store, p).map(Image::name).orElse("(built at first run)"),
                        p.description()));
            }
            Output.table(System.out, List.of("NAME", "CLI (npm)", "ALLOWS", "NEEDS", "IMAGE", "DESCRIPTION"), rows);
            return 0;
        }
    }

    @Command(
            name = "prepare",
            description = "Build the presets' images now (each CLI installed once from the npm registry, at its"
                    + " pinned version), so runs start without installing anything.")
    static final class Prepare implements Callable<Integer> {
        @Parameters(paramLabel = "NAME", arity = "0..*", description = "The presets (default: all).")
        List<String> names = new ArrayList<>();

        @Option(
                names = "--runtime",
                paramLabel = "RUNTIME",
                description = "The runtime of the build's sandboxes (default: the host's).")
        @Nullable
        String runtime;

        @Override
        public Integer call() {
            List<AgentPreset> presets = new ArrayList<>();
            if (names.isEmpty()) {
                presets.addAll(AgentPreset.all());
            }
            for (String n : names) {
                presets.add(AgentPreset.find(n)
                        .orElseThrow(() ->
                                new SandboxException("no agent preset '" + n + "'; the known ones: airlock agent ls")));
            }
            ImageStore store = ImageCommand.store();
            for (AgentPreset p : presets) {
                Image image = AgentImages.ensure(store, p, runtime);
                System.out.println(p.name() + " " + image.name() + " " + image.id());
            }
            return 0;
        }
    }
}
