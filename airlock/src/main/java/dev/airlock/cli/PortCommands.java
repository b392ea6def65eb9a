package dev.airlock.cli;

import dev.airlock.net.NetworkSpec;
import dev.airlock.net.PortMapping;
import dev.airlock.sandbox.SandboxException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code airlock port}: published ports of a sandbox, changed while it runs. */
@Command(
        name = "port",
        description = "List, add or remove a sandbox's published ports.",
        subcommands = {PortCommands.Ls.class, PortCommands.Add.class, PortCommands.Rm.class})
final class PortCommands {
    private PortCommands() {}

    static void print(NetworkSpec spec) {
        for (String p : spec.ports()) {
            PortMapping m = PortMapping.parse(p);
            System.out.println(m.hostIp() + ":" + m.hostPort() + " -> " + m.guestPort());
        }
    }

    @Command(name = "ls", description = "List published ports as HOSTIP:HOSTPORT -> GUESTPORT.")
    static final class Ls implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX")
        String name = "";

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            NetworkSpec spec = SandboxCommands.client().network(name);
            if (json) {
                Output.json(spec.ports());
            } else {
                print(spec);
            }
            return 0;
        }
    }

    @Command(name = "add", description = "Publish [HOSTIP:]HOSTPORT:GUESTPORT (host address 127.0.0.1 by default).")
    static final class Add implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1", paramLabel = "[HOSTIP:]HOSTPORT:GUESTPORT")
        String mapping = "";

        @Override
        public Integer call() {
            print(SandboxCommands.client().publish(name, mapping));
            return 0;
        }
    }

    @Command(name = "rm", description = "Stop publishing a host port.")
    static final class Rm implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1", paramLabel = "HOSTPORT")
        String hostPort = "";

        @Override
        public Integer call() {
            int port;
            try {
                port = Integer.parseInt(hostPort);
            } catch (NumberFormatException e) {
                throw new SandboxException("'" + hostPort + "' is not a port number");
            }
            print(SandboxCommands.client().unpublish(name, port));
            return 0;
        }
    }
}
