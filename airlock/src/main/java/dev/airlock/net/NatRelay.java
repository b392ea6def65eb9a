package dev.airlock.net;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The way out of a {@code --network nat} sandbox on a host that reaches the world through an
 * upstream proxy ({@code HTTPS_PROXY}/{@code HTTP_PROXY} in the daemon's environment). The
 * sandbox's slirp process (QEMU's or slirp4netns) opens ordinary host sockets; {@link
 * NatFirewall} redirects their TCP ({@code -t nat REDIRECT}, matched by the sandbox's cgroup) to
 * this relay's port on the host's loopback. For each connection the relay reads the original
 * destination from the kernel's connection tracking table, checks it against the addresses the
 * sandbox's nat rules accept (the same {@link NatFirewall.Plan}), and opens a {@code CONNECT}
 * tunnel to that address through the upstream with the upstream's credentials, which stay in the
 * daemon: the guest sees only its own TCP connection. {@code NO_PROXY} destinations are
 * connected directly. One relay per sandbox, so a connection's sandbox is known by the port it
 * arrived at.
 */
public final class NatRelay implements AutoCloseable {
    /** Connections served at once per sandbox; more are refused. */
    static final int MAX_CONNECTIONS = 128;

    private static final Path CONNTRACK = Path.of("/proc/net/nf_conntrack");
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    /** conntrack lines are short; one longer than this is not one the relay looks for. */
    private static final int MAX_LINE = 1024;

    private final EgressLog log;
    private final @Nullable UpstreamProxy https;
    private final @Nullable UpstreamProxy http;
    private final Path conntrack;
    private final HostPortListener listener;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private final AtomicReference<NatFirewall.@Nullable Plan> plan = new AtomicReference<>();

    NatRelay(EgressLog log, @Nullable UpstreamProxy https, @Nullable UpstreamProxy http, Path conntrack)
            throws IOException {
        this.log = log;
        this.https = https;
        this.http = http;
        this.conntrack = conntrack;
        ServerSocket server = new ServerSocket(0, 64, InetAddress.getByAddress(new byte[] {127, 0, 0, 1}));
        this.listener = new HostPortListener(
                "nat-relay-" + server.getLocalPort(), server, MAX_CONNECTIONS, this::serve, this::refuse);
    }

    /**
     * A relay for a nat sandbox when the environment names an upstream proxy, listening already;
     * null when it names none (nothing changes then: the sandbox's packets go out by the host's
     * routing).
     */
    public static @Nullable NatRelay forEnvironment(Function<String, @Nullable String> env, EgressLog log)
            throws IOException {
        UpstreamProxy https = UpstreamProxy.fromEnvironment(env, "https");
        UpstreamProxy http = UpstreamProxy.fromEnvironment(env, "http");
        if (https == null && http == null) {
            return null;
        }
        NatRelay relay = new NatRelay(log, https, http, CONNTRACK);
        relay.listener.start();
        return relay;
    }

    /** The port on 127.0.0.1 the sandbox's TCP is redirected to. */
    public int port() {
        return listener.port();
    }

    /** The addresses to accept from now on (every install of the rules: start, policy change). */
    void plan(NatFirewall.Plan plan) {
        this.plan.set(plan);
    }

    /** For the POLICY log line. */
    String describe() {
        return "TCP through the upstream proxy " + (https != null ? https : http) + " (relay 127.0.0.1:" + port() + ")";
    }

    /** A connection over the cap: refused as the nat rules refuse one, and logged. */
    private void refuse(Socket guest) {
        log.record("THROTTLE", "nat TCP", "more than " + MAX_CONNECTIONS + " connections at once");
        reset(guest);
    }

    private void serve(Socket guest) {
        open.add(guest);
        try {
            InetSocketAddress peer = (InetSocketAddress) guest.getRemoteSocketAddress();
            InetSocketAddress target;
            try {
                target = originalDestination(conntrack, peer, port());
            } catch (IOException e) {
                log.record("FAIL", "nat TCP from " + peer, String.valueOf(e.getMessage()));
                reset(guest);
                return;
            }
            if (target == null
                    || (target.getPort() == port() && target.getAddress().isLoopbackAddress())) {
                // Not a redirected connection (a local process connecting to the relay itself):
                // nothing to relay to.
                log.record("DENY", "nat TCP from " + peer, "not a redirected connection of this sandbox");
                reset(guest);
                return;
            }
            String request = "nat TCP " + target.getAddress().getHostAddress() + ":" + target.getPort();
            NatFirewall.Plan p = plan.get();
            NatFirewall.Accept accept = p == null ? null : NatFirewall.accepting(p, target.getAddress());
            if (accept == null) {
                log.record(
                        "DENY",
                        request,
                        target.getAddress().getHostAddress()
                                + " is not accepted by this sandbox's nat rules (allow it with --allow-host)");
                reset(guest);
                return;
            }
            UpstreamProxy via = target.getPort() == 80 && http != null ? http : https != null ? https : http;
            if (via != null && via.bypasses(accept.rule(), target.getAddress())) {
                via = null;
            }
            Socket upstream;
            try {
                upstream = via != null ? via.connect(target.getAddress(), target.getPort()) : direct(target);
            } catch (IOException e) {
                log.record("FAIL", request, (via == null ? "" : "via " + via + ": ") + e.getMessage());
                reset(guest);
                return;
            }
            log.record(
                    "ALLOW",
                    request,
                    (via == null ? "direct (NO_PROXY)" : "via upstream proxy " + via.host() + ":" + via.port()) + " ("
                            + accept.why() + ")");
            open.add(upstream);
            try {
                Thread back = Thread.ofVirtual().start(() -> copy(upstream, guest));
                copy(guest, upstream);
                back.join();
            } finally {
                open.remove(upstream);
                closeQuietly(upstream);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            open.remove(guest);
            closeQuietly(guest);
        }
    }

    private static Socket direct(InetSocketAddress target) throws IOException {
        Socket s = new Socket();
        try {
            s.connect(target, (int) CONNECT_TIMEOUT.toMillis());
            return s;
        } catch (IOException e) {
            s.close();
            throw e;
        }
    }

    /** One direction until its end, passed on as a half-close; an error ends both. */
    private static void copy(Socket from, Socket to) {
        try {
            InputStream in = from.getInputStream();
            OutputStream out = to.getOutputStream();
            in.transferTo(out);
            to.shutdownOutput();
        } catch (IOException e) {
            closeQuietly(from);
            closeQuietly(to);
        }
    }

    /** Refused: the guest sees a reset, as the nat rules' REJECT gives it. */
    private static void reset(Socket s) {
        try {
            s.setSoLinger(true, 0);
        } catch (IOException e) {
            // closed anyway below
        }
        closeQuietly(s);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // nothing more to do with it
        }
    }

    /**
     * The destination a redirected connection from {@code peer} to the relay's {@code port} was
     * opened toward, from the kernel's connection tracking table ({@code /proc/net/nf_conntrack}:
     * the original tuple's source is the peer, the reply tuple's source port the relay's), or
     * null when the table has no such connection.
     */
    static @Nullable InetSocketAddress originalDestination(Path table, InetSocketAddress peer, int port)
            throws IOException {
        String peerAddress = peer.getAddress().getHostAddress();
        String peerPort = Integer.toString(peer.getPort());
        String relayPort = Integer.toString(port);
        try (BufferedReader r = Files.newBufferedReader(table, StandardCharsets.US_ASCII)) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.length() > MAX_LINE || !line.startsWith("ipv4 ") || !line.contains(" tcp ")) {
                    continue;
                }
                Map<String, String> original = new HashMap<>();
                Map<String, String> reply = new HashMap<>();
                for (String field : line.split(" +")) {
                    int eq = field.indexOf('=');
                    if (eq > 0) {
                        String key = field.substring(0, eq);
                        Map<String, String> tuple = original.containsKey(key) ? reply : original;
                        tuple.putIfAbsent(key, field.substring(eq + 1));
                    }
                }
                if (peerAddress.equals(original.get("src"))
                        && peerPort.equals(original.get("sport"))
                        && relayPort.equals(reply.get("sport"))
                        && original.get("dst") != null
                        && original.get("dport") != null) {
                    try {
                        return new InetSocketAddress(
                                NetworkSpec.literal(original.get("dst")), Integer.parseInt(original.get("dport")));
                    } catch (IllegalArgumentException e) {
                        return null;
                    }
                }
            }
        } catch (NoSuchFileException e) {
            throw new IOException(
                    "the kernel's connection tracking table " + table
                            + " is missing: --network nat through an upstream proxy needs it (nf_conntrack with procfs)",
                    e);
        }
        return null;
    }

    @Override
    public void close() {
        listener.close();
        for (Socket s : open) {
            closeQuietly(s);
        }
    }
}
