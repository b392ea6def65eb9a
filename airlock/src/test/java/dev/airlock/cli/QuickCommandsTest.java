package dev.airlock.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

/**
 * The quick path takes an argument vector only when it means what picocli makes of it: every
 * vector here is parsed both ways, and where the quick parser answers, picocli must parse the
 * same command with the same values (and must not refuse it).
 */
class QuickCommandsTest {
    @ParameterizedTest
    @ValueSource(
            strings = {
                "exec dev -- true",
                "exec dev true",
                "exec dev ls /tmp",
                "exec dev -- ls -l /tmp",
                "exec dev --",
                "exec dev",
                "exec -it dev -- bash",
                "exec -ti dev bash",
                "exec -i -t dev -- cat",
                "exec --interactive --tty dev -- cat",
                "exec -i dev -- cat",
                "exec -t dev -- cat",
                "exec -u root -w /tmp -e A=1 -e B=2 --timeout 5s dev -- env",
                "exec --user=airlock --workdir=/ --env=A=1=2 --timeout=1m dev -- env",
                "exec -e PATH dev -- env",
                "exec -u 1000:1000 dev id",
                "exec -e A=1 -e A=2 dev env",
                // shapes the quick path leaves to picocli
                "exec dev ls -l",
                "exec dev -e A=1 -- env",
                "exec -u root -u airlock dev id",
                "exec -i -i dev cat",
                "exec -it -i dev cat",
                "exec -x dev true",
                "exec --help",
                "exec -h dev true",
                "exec -uroot dev id",
                "exec -u -- dev id",
                "exec --timeout",
                "exec -- dev true",
                "exec -itu root dev id",
                "exec --interactive=true dev cat",
            })
    void execMeansWhatPicocliMeans(String line) {
        String[] args = line.split(" ");
        Optional<QuickCommands.ExecArgs> quick = QuickCommands.exec(args);
        if (quick.isEmpty()) {
            return;
        }
        CommandLine cl = new CommandLine(new Main());
        CommandLine.ParseResult parsed = cl.parseArgs(args);
        SandboxCommands.Exec exec =
                (SandboxCommands.Exec) parsed.subcommand().commandSpec().userObject();
        assertThat(quick.get())
                .isEqualTo(new QuickCommands.ExecArgs(
                        exec.name,
                        exec.command,
                        exec.exec.interactive,
                        exec.exec.tty,
                        exec.exec.user,
                        exec.exec.timeout,
                        exec.env,
                        exec.workdir));
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "ps",
                "ls",
                "ps -a",
                "ps --all",
                "ps -q",
                "ps --quiet",
                "ps -aq",
                "ps -qa",
                "ps -a -q",
                "ls --all --quiet",
                // left to picocli
                "ps --json",
                "ps -a -a",
                "ps -aq -q",
                "ps -h",
                "ps x",
                "ps -aqx",
            })
    void psMeansWhatPicocliMeans(String line) {
        String[] args = line.split(" ");
        Optional<QuickCommands.PsArgs> quick = QuickCommands.ps(args);
        if (quick.isEmpty()) {
            return;
        }
        CommandLine.ParseResult parsed = new CommandLine(new Main()).parseArgs(args);
        SandboxCommands.Ps ps =
                (SandboxCommands.Ps) parsed.subcommand().commandSpec().userObject();
        assertThat(quick.get()).isEqualTo(new QuickCommands.PsArgs(ps.all, ps.quiet));
        assertThat(ps.json).isFalse();
    }

    @ParameterizedTest
    @ValueSource(strings = {"exec dev -e A=1 -- env", "ps --json", "exec -x dev true", "run --rm -- true", "--help"})
    void otherShapesAreLeftToPicocli(String line) {
        String[] args = line.split(" ");
        assertThat(QuickCommands.ps(args)).isEmpty();
        assertThat(QuickCommands.exec(args)).isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"exec -u root -u airlock dev id", "exec -i -i dev cat", "ps -a -a"})
    void picocliRefusesWhatTheQuickPathDeclinesAsRepeated(String line) {
        CommandLine cl = new CommandLine(new Main());
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> cl.parseArgs(line.split(" ")))
                .isInstanceOf(CommandLine.ParameterException.class);
        assertThat(List.of(QuickCommands.exec(line.split(" ")), QuickCommands.ps(line.split(" "))))
                .allMatch(Optional::isEmpty);
    }
}
