package dev.airlock.local;

import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.host.NatCgroup;
import dev.airlock.net.EgressLog;
import dev.airlock.net.EgressPolicy;
import dev.airlock.net.EgressProxy;
import dev.airlock.net.HostCas;
import dev.airlock.net.InferenceBridge;
import dev.airlock.net.InferenceConfig;
import dev.airlock.net.InterceptionCa;
import dev.airlock.net.NatFirewall;
import dev.airlock.net.NatRelay;
import dev.airlock.net.NetworkSpec;
import dev.airlock.net.PortForwarder;
import dev.airlock.net.PortMapping;
import dev.airlock.net.Secret;
import dev.airlock.net.UpstreamTls;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;

/**
 * The daemon's half of one running sandbox's network: its egress proxy with the live policy. The
 * settings are kept in {@code network.json} in the sandbox's directory, so a policy change
 * survives a restart of the daemon or of the sandbox.
 */
final class SandboxNetwork implements AutoCloseable {
    static final String FILE = "network.json";
    private static final tools.jackson.databind.json.JsonMapper JSON =
            tools.jackson.databind.json.JsonMapper.builder().build();

    private final Sandbox sandbox;
    private final Path dir;
    private final Path agentSocket;
    private final AtomicReference<EgressPolicy> policy = new AtomicReference<>();
    private @Nullable EgressProxy proxy;
    private final Map<Integer, PortForwarder> ports = new ConcurrentHashMap<>();
    private @Nullable GuestChannel agentChannel;
    private @Nullable InferenceBridge bridge;
    /** The relay of a nat sandbox's TCP to the host's upstream proxy, when the daemon has one. */
    private @Nullable NatRelay natRelay;

    private final AirlockDirs dirs;

    SandboxNetwork(Sandbox sandbox, Path dir, Path agentSocket, AirlockDirs dirs) {
        this.sandbox = sandbox;
        this.dir = dir;
        this.agentSocket = agentSocket;
        this.dirs = dirs;
    }

    static NetworkSpec load(Path dir) {
        Path f = dir.resolve(FILE);
        if (!Files.exists(f)) {
            return NetworkSpec.none();
        }
        try {
            return JSON.readValue(Files.readString(f, StandardCharsets.UTF_8), NetworkSpec.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f, e);
        }
    }

    static final String SECRETS = "secrets.json";

    /** Secret values stay on the host, readable by the daemon's user only. */
    static void saveSecrets(Path dir, List<Secret> secrets) {
        if (secrets.isEmpty()) {
            return;
        }
        writeOwnerOnly(dir.resolve(SECRETS), JSON.writeValueAsString(secrets), "the secrets");
    }

    /**
     * Writes a file only the daemon's user can read: made 0600 beside it, then renamed over it,
     * so a crash leaves the old content or the new, never none, and never a wider mode.
     */
    static void writeOwnerOnly(Path f, String json, String what) {
        try {
            HostFiles.writeAtomically(f, json.getBytes(StandardCharsets.UTF_8));
        } catch (UncheckedIOException e) {
            throw new UncheckedIOException(
                    "cannot store " + what + " of the sandbox in " + f.getParent(), e.getCause());
        }
    }

    static List<Secret> loadSecrets(Path dir) {
        Path f = dir.resolve(SECRETS);
        if (!Files.exists(f)) {
            return List.of();
        }
        try {
            return List.of(JSON.readValue(Files.readString(f, StandardCharsets.UTF_8), Secret[].class));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f, e);
        }
    }

    static final String CA_CERTIFICATE = "interception-ca.crt";
    static final String CA_KEY = "interception-ca.key";

    /**
     * The sandbox's interception CA, made on first use (at the sandbox's first start) and kept
     * owner-only in its directory: the key is never sent anywhere.
     */
    static InterceptionCa interceptionCa(Path dir, String sandboxName) {
        Path cert = dir.resolve(CA_CERTIFICATE);
        Path key = dir.resolve(CA_KEY);
        if (Files.exists(cert) && Files.exists(key)) {
            try {
                return InterceptionCa.fromPem(
                        Files.readString(cert, StandardCharsets.US_ASCII),
                        Files.readString(key, StandardCharsets.US_ASCII));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the interception CA in " + dir, e);
            } catch (java.security.GeneralSecurityException e) {
                throw new SandboxException(
                        SandboxException.Kind.FAILED,
                        "the interception CA in " + dir + " is damaged: " + e.getMessage());
            }
        }
        InterceptionCa ca = InterceptionCa.generate("Airlock sandbox " + sandboxName + " interception CA");
        writeOwnerOnly(key, ca.privateKeyPem(), "the interception CA key");
        writeOwnerOnly(cert, ca.certificatePem(), "the interception CA");
        return ca;
    }

    /** A fork's network settings: its source's, without the published ports. */
    static void copyForClone(Path sourceDir, Path cloneDir) {
        NetworkSpec spec = load(sourceDir);
        save(cloneDir, spec.withPorts(List.of()));
        saveSecrets(cloneDir, loadSecrets(sourceDir));
        // The clone's disk trusts its source's CA already.
        for (String f : List.of(CA_CERTIFICATE, CA_KEY)) {
            Path from = sourceDir.resolve(f);
            if (Files.exists(from)) {
                try {
                    writeOwnerOnly(
                            cloneDir.resolve(f),
                            Files.readString(from, StandardCharsets.US_ASCII),
                            "the interception CA");
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot copy the interception CA of " + sourceDir, e);
                }
            }
        }
        saveInference(cloneDir, loadInference(sourceDir));
    }

    static void save(Path dir, NetworkSpec spec) {
        HostFiles.writeAtomically(
                dir.resolve(FILE), (JSON.writeValueAsString(spec) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Replaces the allowlist and pins, on disk and (if running) in the live proxy at once. */
    static NetworkSpec updatePolicy(
            Path dir, @Nullable SandboxNetwork live, List<String> allowHosts, List<String> addHosts) {
        NetworkSpec spec = load(dir).withPolicy(allowHosts, addHosts);
        save(dir, spec);
        if (live != null) {
            live.policy.set(policyOf(spec));
            if (spec.nat()) {
                live.installNat(spec);
            }
        }
        return spec;
    }

    private static EgressPolicy policyOf(NetworkSpec spec) {
        return new EgressPolicy(spec, InetAddress::getAllByName);
    }

    static final String INFERENCE = "inference.json";
    /** The bridge's counts, kept across daemon restarts and stops. */
    static final String USAGE_FILE = "inference-usage.json";

    static void saveInference(Path dir, @Nullable InferenceConfig config) {
        if (config == null) {
            return;
        }
        writeOwnerOnly(dir.resolve(INFERENCE), JSON.writeValueAsString(config), "the inference settings");
    }

    static @Nullable InferenceConfig loadInference(Path dir) {
        Path f = dir.resolve(INFERENCE);
        if (!Files.exists(f)) {
            return null;
        }
        try {
            return JSON.readValue(Files.readString(f, StandardCharsets.UTF_8), InferenceConfig.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f, e);
        }
    }

    private Map<String, String> guestEnv = Map.of();

    /**
     * The variables every process in the sandbox needs for its network (proxy, CA, secrets'
     * placeholders, the inference endpoint), known once {@link #start} ran; the caller sets them
     * in the agent together with the sandbox's own, since each setting replaces the last.
     */
    Map<String, String> guestEnv() {
        return guestEnv;
    }

    /** Inference bridge usage, or null when the sandbox has no bridge. */
    InferenceBridge.@Nullable Usage inferenceUsage() {
        InferenceBridge b = bridge;
        return b == null ? null : b.usage();
    }

    void start() throws IOException, InterruptedException {
        NetworkSpec spec = load(dir);
        policy.set(policyOf(spec));
        InferenceConfig inference = loadInference(dir);
        // The variables every process gets: one SET_ENV, since each replaces the last.
        Map<String, String> env = new java.util.HashMap<>();
        List<Secret> secrets = loadSecrets(dir);
        // Secrets in HTTPS requests need the proxy to terminate TLS to their hosts: the guest
        // trusts a CA of this sandbox alone, whose key stays here.
        InterceptionCa ca = spec.proxy() && !secrets.isEmpty() ? interceptionCa(dir, sandbox.name()) : null;
        if (spec.proxy()) {
            env.putAll(EgressProxy.guestEnv(secrets));
        }
        // The CAs the host trusts beyond the public ones (an intercepting network's, a
        // company's): without them the guest's TLS through the proxy or nat fails where the
        // host's succeeds.
        HostCas.Found hostCas =
                !spec.mode().equals("none") && spec.trustsHostCas() ? HostCas.ofThisHost() : HostCas.Found.none();
        if (ca != null || !hostCas.cas().isEmpty()) {
            hostCas.installIn(agentChannel(), ca);
        }
        if (ca != null) {
            env.putAll(InterceptionCa.guestEnv());
        }
        env.putAll(hostCas.guestEnv());
        if (inference != null) {
            env.putAll(InferenceBridge.guestEnv());
            InferenceBridge b = new InferenceBridge(
                    sandbox.name(), agentSocket, inference, new EgressLog(dir), dir.resolve(USAGE_FILE));
            bridge = b;
            b.start();
        }
        guestEnv = Map.copyOf(env);
        if (spec.proxy()) {
            EgressProxy p = new EgressProxy(
                    sandbox.name(),
                    agentSocket,
                    policy::get,
                    new EgressLog(dir),
                    secrets,
                    ca,
                    ca == null ? null : UpstreamTls.fromEnvironment());
            proxy = p;
            p.start();
        }
        if (spec.nat()) {
            natRelay = NatRelay.forEnvironment(System::getenv, new EgressLog(dir));
            installNat(spec);
        }
        for (String m : spec.ports()) {
            publish(PortMapping.parse(m));
        }
    }

    /**
     * The host firewall rules of a nat sandbox, (re)installed on every start: a start may have
     * made its cgroup anew, and a rule names the group it found when it was added.
     */
    private void installNat(NetworkSpec spec) {
        NatFirewall.install(NatCgroup.of(dirs, sandbox.id()), sandbox.id(), spec, new EgressLog(dir), natRelay);
    }

    /**
     * The daemon's own agent session for this sandbox: SET_ENV and the guest connections of
     * published ports; reopened when it ended.
     */
    private synchronized GuestChannel agentChannel() throws IOException {
        GuestChannel ch = agentChannel;
        if (ch == null || !ch.isOpen()) {
            ch = GuestChannel.connect(agentSocket, Duration.ofSeconds(30));
            agentChannel = ch;
        }
        return ch;
    }

    private void publish(PortMapping m) throws IOException {
        if (ports.containsKey(m.hostPort())) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT, "host port " + m.hostPort() + " is already published");
        }
        ports.put(m.hostPort(), new PortForwarder(sandbox.name(), m, this::agentChannel));
    }

    /** Publishes a port now (if running) and keeps it in the settings. */
    static NetworkSpec addPort(Path dir, @Nullable SandboxNetwork live, String mapping) throws IOException {
        PortMapping m = PortMapping.parse(mapping);
        NetworkSpec spec = load(dir);
        for (String p : spec.ports()) {
            if (PortMapping.parse(p).hostPort() == m.hostPort()) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT, "host port " + m.hostPort() + " is already published as " + p);
            }
        }
        if (live != null) {
            live.publish(m);
        }
        List<String> all = new ArrayList<>(spec.ports());
        all.add(m.toString());
        NetworkSpec updated = spec.withPorts(all);
        save(dir, updated);
        return updated;
    }

    static NetworkSpec removePort(Path dir, @Nullable SandboxNetwork live, int hostPort) {
        NetworkSpec spec = load(dir);
        List<String> all = new ArrayList<>(spec.ports());
        if (!all.removeIf(p -> PortMapping.parse(p).hostPort() == hostPort)) {
            throw new SandboxException(
                    SandboxException.Kind.NOT_FOUND,
                    "host port " + hostPort + " is not published"
                            + (spec.ports().isEmpty() ? "" : " (published: " + String.join(", ", spec.ports()) + ")"));
        }
        if (live != null) {
            PortForwarder f = live.ports.remove(hostPort);
            if (f != null) {
                f.close();
            }
        }
        NetworkSpec updated = spec.withPorts(all);
        save(dir, updated);
        return updated;
    }

    @Override
    public void close() {
        EgressProxy p = proxy;
        if (p != null) {
            p.close();
        }
        InferenceBridge b = bridge;
        if (b != null) {
            b.close();
        }
        NatRelay r = natRelay;
        if (r != null) {
            r.close();
        }
        ports.values().forEach(PortForwarder::close);
        ports.clear();
        GuestChannel ch = agentChannel;
        if (ch != null) {
            ch.close();
        }
    }
}
