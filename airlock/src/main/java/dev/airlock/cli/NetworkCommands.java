package dev.airlock.cli;

import dev.airlock.net.NetworkSpec;
import dev.airlock.service.PolicyChange;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code airlock network}: a sandbox's egress policy, shown and changed while it runs. A change
 * applies to connections made after it; open connections keep going.
 */
@Command(
        name = "network",
        description = "Show or change a sandbox's egress policy (takes effect at once on a running sandbox).",
        subcommands = {
            NetworkCommands.Show.class,
            NetworkCommands.Allow.class,
            NetworkCommands.Deny.class,
            NetworkCommands.AddHost.class,
            NetworkCommands.RemoveHost.class
        })
final class NetworkCommands {
    private NetworkCommands() {}

    static void print(NetworkSpec spec, boolean json) {
        if (json) {
            Output.json(spec);
            return;
        }
        System.out.println("mode        " + spec.mode());
        System.out.println("allow-host  " + (spec.allowHosts().isEmpty() ? "-" : String.join(" ", spec.allowHosts())));
        System.out.println("add-host    " + (spec.addHosts().isEmpty() ? "-" : String.join(" ", spec.addHosts())));
        System.out.println("publish     " + (spec.ports().isEmpty() ? "-" : String.join(" ", spec.ports())));
        System.out.println("host-ca     " + (spec.trustsHostCas() ? "trusted" : "not trusted (--no-host-ca)"));
    }

    @Command(name = "show", description = "Print the network mode, allowlist, pins and published ports.")
    static final class Show implements Callable<Integer> {
        @Parameters(paramLabel = "SANDBOX")
        String name = "";

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            print(SandboxCommands.client().network(name), json);
            return 0;
        }
    }

    @Command(name = "allow", description = "Add hosts (names or *.domain wildcards) to the allowlist.")
    static final class Allow implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1..*", arity = "1..*", paramLabel = "HOST")
        List<String> hosts = new ArrayList<>();

        @Override
        public Integer call() {
            change(name, new PolicyChange(hosts, null, null, null));
            return 0;
        }
    }

    @Command(name = "deny", description = "Remove hosts from the allowlist.")
    static final class Deny implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1..*", arity = "1..*", paramLabel = "HOST")
        List<String> hosts = new ArrayList<>();

        @Override
        public Integer call() {
            change(name, new PolicyChange(null, hosts, null, null));
            return 0;
        }
    }

    @Command(name = "add-host", description = "Pin names to addresses (NAME:IP), as --add-host.")
    static final class AddHost implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1..*", arity = "1..*", paramLabel = "NAME:IP")
        List<String> pins = new ArrayList<>();

        @Override
        public Integer call() {
            change(name, new PolicyChange(null, null, pins, null));
            return 0;
        }
    }

    @Command(name = "rm-host", description = "Remove the pins of names.")
    static final class RemoveHost implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String name = "";

        @Parameters(index = "1..*", arity = "1..*", paramLabel = "NAME")
        List<String> names = new ArrayList<>();

        @Override
        public Integer call() {
            change(name, new PolicyChange(null, null, null, names));
            return 0;
        }
    }

    /** One change, made by the service in one step, and the policy it leaves. */
    private static void change(String name, PolicyChange change) {
        print(SandboxCommands.client().changePolicy(name, change), false);
    }
}
