package dev.airlock.cli;

import dev.airlock.daemon.Daemon;
import dev.airlock.daemon.DaemonTakeover;
import dev.airlock.daemon.TcpListen;
import dev.airlock.host.AirlockDirs;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code airlock serve}: runs the daemon in the foreground with more listeners than its unix
 * socket. It starts listeners and nothing else: the daemon (the composition root) serves them.
 */
@Command(
        name = "serve",
        description = {
            "Run airlockd in the foreground, serving on TCP too: the HTTP API (/v1/...), MCP over streamable"
                    + " HTTP (/mcp) and an E2B-compatible endpoint (E2B_API_URL and E2B_SANDBOX_URL both set to"
                    + " http://HOST:PORT, E2B_API_KEY the token).",
            "TCP clients send 'Authorization: Bearer TOKEN'; the token is made at the first start and kept in"
                    + " <data>/api-token (0600). A daemon the CLI started is replaced (sandboxes keep running)."
        })
final class ServeCommand implements Callable<Integer> {
    @Option(
            // --e2b is the name E2B users look for; the port serves all three either way.
            names = {"--listen", "--e2b"},
            paramLabel = "HOST:PORT",
            required = true,
            description = "serve the HTTP API, MCP and E2B here too (loopback only unless --allow-non-loopback), e.g."
                    + " 127.0.0.1:7070; --e2b is another name for it")
    List<String> listen = new ArrayList<>();

    @Option(
            names = "--allow-non-loopback",
            description = "allow an address other machines can reach (plain HTTP: the token travels unencrypted)")
    boolean allowNonLoopback;

    @Override
    public Integer call() throws Exception {
        List<InetSocketAddress> addresses = new ArrayList<>();
        for (String l : listen) {
            addresses.add(TcpListen.parse(l, allowNonLoopback));
        }
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        DaemonTakeover.replaceOnDemandDaemon(dirs);
        new Daemon(dirs, addresses).run();
        return 0;
    }
}
