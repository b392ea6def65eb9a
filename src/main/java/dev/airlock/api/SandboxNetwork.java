package dev.airlock.api;

import dev.airlock.host.HostFiles;
import dev.airlock.net.EgressLog;
import dev.airlock.net.EgressPolicy;
import dev.airlock.net.EgressProxy;
import dev.airlock.net.NetworkSpec;
import dev.airlock.sandbox.Sandbox;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;

/**
 * The daemon's half of one running sandbox's network: its egress proxy with the live policy. The
 * settings are kept in {@code network.json} in the sandbox's directory, so a policy change
 * survives a restart of the daemon or of the sandbox.
 */
final class SandboxNetwork implements AutoCloseable {
    static final String FILE = "network.json";

    private final Sandbox sandbox;
    private final Path dir;
    private final Path agentSocket;
    private final AtomicReference<EgressPolicy> policy = new AtomicReference<>();
    private @Nullable EgressProxy proxy;

    SandboxNetwork(Sandbox sandbox, Path dir, Path agentSocket) {
        this.sandbox = sandbox;
        this.dir = dir;
        this.agentSocket = agentSocket;
    }

    static NetworkSpec load(Path dir) {
        Path f = dir.resolve(FILE);
        if (!Files.exists(f)) {
            return NetworkSpec.none();
        }
        try {
            return ApiHandler.JSON.readValue(Files.readString(f, StandardCharsets.UTF_8), NetworkSpec.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f, e);
        }
    }

    static void save(Path dir, NetworkSpec spec) {
        HostFiles.writeAtomically(
                dir.resolve(FILE), (ApiHandler.JSON.writeValueAsString(spec) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Replaces the allowlist and pins, on disk and (if running) in the live proxy at once. */
    static NetworkSpec updatePolicy(
            Path dir, @Nullable SandboxNetwork live, List<String> allowHosts, List<String> addHosts) {
        NetworkSpec spec = load(dir).withPolicy(allowHosts, addHosts);
        save(dir, spec);
        if (live != null) {
            live.policy.set(policyOf(spec));
        }
        return spec;
    }

    private static EgressPolicy policyOf(NetworkSpec spec) {
        return new EgressPolicy(spec, InetAddress::getAllByName);
    }

    void start() throws IOException, InterruptedException {
        NetworkSpec spec = load(dir);
        policy.set(policyOf(spec));
        if (spec.proxy()) {
            EgressProxy p = new EgressProxy(sandbox.name(), agentSocket, policy::get, new EgressLog(dir));
            proxy = p;
            p.start();
        }
    }

    @Override
    public void close() {
        EgressProxy p = proxy;
        if (p != null) {
            p.close();
        }
    }
}
