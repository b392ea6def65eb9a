package dev.airlock.cli;

import dev.airlock.daemon.Daemon;
import dev.airlock.host.AirlockDirs;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

@Command(name = "daemon", description = "Run airlockd in the foreground (the CLI starts it on demand).")
final class DaemonCommand implements Callable<Integer> {
    @Override
    public Integer call() throws Exception {
        new Daemon(AirlockDirs.fromEnvironment()).run();
        return 0;
    }
}
