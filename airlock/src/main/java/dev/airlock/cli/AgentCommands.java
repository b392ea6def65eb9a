package dev.airlock.cli;

import dev.airlock.workspace.AgentPreset;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code airlock agent}: the agent presets {@code run --agent NAME} knows. */
@Command(
        name = "agent",
        description = "The known coding agents (presets) for run --workspace . --agent NAME --task TEXT.",
        subcommands = {AgentCommands.Ls.class})
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
            List<List<String>> rows = new ArrayList<>();
            for (AgentPreset p : presets) {
                rows.add(List.of(
                        p.name(),
                        p.npmPackage(),
                        String.join(",", p.apiHosts()),
                        p.key() + " (secret: the sandbox sees a placeholder)",
                        p.description()));
            }
            Output.table(System.out, List.of("NAME", "CLI (npm)", "ALLOWS", "NEEDS", "DESCRIPTION"), rows);
            return 0;
        }
    }
}
