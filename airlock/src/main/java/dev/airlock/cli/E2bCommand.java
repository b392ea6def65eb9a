package dev.airlock.cli;

import dev.airlock.e2b.E2bServer;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.TokenFile;
import dev.airlock.sandbox.Resources;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.eclipse.jetty.server.Server;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code airlock e2b --listen HOST:PORT}: an E2B-compatible endpoint (E2B's control plane and
 * envd on one port) over this data directory's daemon, for the unchanged {@code e2b} SDK.
 */
@Command(
        name = "e2b",
        description = {
            "Serve an E2B-compatible API (control plane and envd on one port) for the e2b SDK.",
            "Then: E2B_API_URL=http://HOST:PORT E2B_SANDBOX_URL=http://HOST:PORT E2B_API_KEY=$(cat KEYFILE)"
        })
final class E2bCommand implements Callable<Integer> {
    @Option(
            names = "--listen",
            required = true,
            paramLabel = "HOST:PORT",
            description = "Where to listen, e.g. 127.0.0.1:3000 (loopback unless you name another address).")
    String listen = "";

    @Option(
            names = "--api-key-file",
            paramLabel = "FILE",
            description = "The API key clients must send (default: DATA/e2b/api-key, made at first start, mode 0600).")
    @Nullable
    Path apiKeyFile;

    @Option(
            names = "--runtime",
            paramLabel = "RUNTIME",
            description = "Runtime of new sandboxes (microvm, container); a sandbox's metadata key airlock.runtime"
                    + " overrides it. Default: the host's.")
    @Nullable
    String runtime;

    @Option(
            names = "--max-upload",
            paramLabel = "SIZE",
            defaultValue = "1g",
            description = "Largest file POST /files takes (default ${DEFAULT-VALUE}).")
    String maxUpload = "1g";

    @Override
    public Integer call() throws Exception {
        AirlockDirs dirs = SandboxCommands.dirs();
        Listen at = Listen.parse(listen, "--listen");
        Path keyFile =
                apiKeyFile != null ? apiKeyFile : dirs.data().resolve("e2b").resolve("api-key");
        String key = apiKeyFile != null ? TokenFile.read(apiKeyFile) : TokenFile.readOrCreate(keyFile, "e2b_");
        long limit = Resources.parseMiB(maxUpload) << 20;
        E2bServer endpoint = new E2bServer(SandboxCommands.client(), dirs.data(), dirs.runtime(), key, runtime, limit);
        Server server = E2bServer.listen(endpoint, at.host(), at.port());
        String url = "http://" + (at.host().contains(":") ? "[" + at.host() + "]" : at.host()) + ":" + at.port();
        System.err.println("airlock: E2B endpoint on " + url + "; for the e2b SDK:");
        System.err.println(
                "  export E2B_API_URL=" + url + " E2B_SANDBOX_URL=" + url + " E2B_API_KEY=$(cat " + keyFile + ")");
        server.join();
        return 0;
    }
}
