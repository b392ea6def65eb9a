package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Egress through the host proxy with real traffic, all of it to servers this test starts on the
 * host's loopback and reaches through {@code --add-host} names. Refusals are checked both in the
 * guest (the message curl shows) and on the host (the egress log). Runs once per runtime.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class NetworkTest {
    abstract String runtime();

    private AirlockDirs dirs;
    Cli cli;
    TestServers servers;
    String api;
    private String apiTls;
    private Path upstreamCa;
    private int publishedAtCreate;
    /** The value the CLI finds in its environment; it must reach the upstream and nothing in the guest. */
    private static final String UPSTREAM_KEY = "host-key-" + java.util.UUID.randomUUID();

    static final String REAL_SECRET = "s3cr3t-" + java.util.UUID.randomUUID();

    /** The environment of the command that starts the daemon (and of one that restarts it). */
    private java.util.Map<String, String> daemonEnv = java.util.Map.of();

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("net-" + runtime());
        cli = new Cli(dirs).inRuntime(runtime());
        Path tmp = Files.createTempDirectory("airlock-net-test");
        servers = new TestServers(tmp);
        api = "api.test:" + servers.httpPort();
        apiTls = "api.test:" + servers.httpsPort();
        upstreamCa = servers.writeUpstreamCa(tmp);
        publishedAtCreate = freePort();
        daemonEnv = java.util.Map.of(
                "TOKEN",
                REAL_SECRET,
                "UPSTREAM_KEY",
                UPSTREAM_KEY,
                "OTHER_TOKEN",
                "other-" + REAL_SECRET,
                // the daemon this command starts trusts the test servers' CA for upstreams
                UpstreamTls.EXTRA_CA_VARIABLE,
                upstreamCa.toString());
        ok(cli.run(
                daemonEnv,
                new byte[0],
                "run",
                "-d",
                "--name",
                "px",
                "--secret",
                "TOKEN@api.test",
                "--secret",
                "OTHER_TOKEN@untrusted.test",
                "--inference",
                "http://127.0.0.1:" + servers.httpPort() + "/v1",
                "--inference-key-env",
                "UPSTREAM_KEY",
                "--inference-requests",
                "3",
                "--memory",
                "256m",
                "--network",
                "proxy",
                "--allow-host",
                "api.test",
                "--allow-host",
                "localhost",
                "--allow-host",
                "*.wild.test",
                "--allow-host",
                "untrusted.test",
                "--add-host",
                "api.test:127.0.0.1",
                "--add-host",
                "other.test:127.0.0.1",
                "--add-host",
                "deep.wild.test:127.0.0.1",
                "--add-host",
                "untrusted.test:127.0.0.1",
                "-p",
                publishedAtCreate + ":8000"));
        ok(cli.run("run", "-d", "--name", "nonet", "--memory", "256m"));
        // No allowlist: everything refused until a rule names it; lo.test pinned for later.
        ok(cli.run(
                "run",
                "-d",
                "--name",
                "nt",
                "--memory",
                "256m",
                "--network",
                "nat",
                "--add-host",
                "lo.test:127.0.0.1"));
    }

    @AfterAll
    void tearDown() {
        cli.run("rm", "-f", "px");
        cli.run("rm", "-f", "nonet");
        cli.run("rm", "-f", "nt");
        servers.close();
        TestHost.cleanUp(dirs);
    }

    static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as("stdout %s\nstderr %s", r.out(), r.err()).isZero();
        return r;
    }

    Cli.Result sh(String sandbox, String script) {
        return cli.run("exec", sandbox, "--", "bash", "-c", script);
    }

    private String egressLog() {
        return ok(cli.run("logs", "--egress", "px")).out();
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** One line to a published port and the guest server's answer. */
    private static String ask(int port, String line) throws Exception {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
            s.shutdownOutput();
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void publishedPortsReachAGuestServer() throws Exception {
        // A line server on the guest's loopback (perl is in every Debian image); the exec returns
        // once it listens.
        ok(sh(
                "px",
                "perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => \"127.0.0.1\","
                        + " LocalPort => 8000, Listen => 5, ReuseAddr => 1) or die; open(F, \">/tmp/srv.ready\");"
                        + " close F; while ($c = $s->accept) { $l = <$c>; print $c \"guest says: $l\"; close $c }'"
                        + " >/dev/null 2>&1 </dev/null & until [ -e /tmp/srv.ready ]; do :; done"));
        assertThat(ask(publishedAtCreate, "hi")).isEqualTo("guest says: hi\n");
        int extra = freePort();
        ok(cli.run("port", "add", "px", extra + ":8000"));
        assertThat(ok(cli.run("port", "ls", "px")).out())
                .contains("127.0.0.1:" + publishedAtCreate + " -> 8000")
                .contains("127.0.0.1:" + extra + " -> 8000");
        assertThat(ask(extra, "again")).isEqualTo("guest says: again\n");
        ok(cli.run("port", "rm", "px", String.valueOf(extra)));
        assertThatThrownBy(() -> new Socket(InetAddress.getLoopbackAddress(), extra).close())
                .isInstanceOf(ConnectException.class);
        Cli.Result twice = cli.run("port", "add", "px", publishedAtCreate + ":9000");
        assertThat(twice.exit()).isNotZero();
        assertThat(twice.err()).contains("host port " + publishedAtCreate + " is already published");
    }

    @Test
    void secretValueReachesOnlyItsBoundUpstreamAndNeverTheGuest() {
        String placeholder = ok(sh("px", "echo $TOKEN")).out().strip();
        assertThat(placeholder).startsWith("airlock-secret-").doesNotContain(REAL_SECRET);
        ok(sh("px", "curl -sS -H \"Authorization: Bearer $TOKEN\" http://" + api + "/secret"));
        assertThat(servers.header("/secret", "authorization")).containsExactly("Bearer " + REAL_SECRET);
        // deep.wild.test is allowed but the secret is not bound to it: the placeholder goes unchanged.
        ok(sh(
                "px",
                "curl -sS -H \"Authorization: Bearer $TOKEN\" http://deep.wild.test:" + servers.httpPort()
                        + "/unbound"));
        assertThat(servers.header("/unbound", "authorization")).containsExactly("Bearer " + placeholder);
        // What the guest can see of itself (environment of every process) and what it can store.
        ok(sh("px", "env > /root/env.txt; cat /proc/self/environ > /root/environ.bin"));
        Cli.Result found =
                sh("px", "grep -rsl -- '" + REAL_SECRET + "' /root /tmp /etc /home /var /proc/[0-9]*/environ; true");
        assertThat(found.out()).isEmpty();
        assertThat(ok(sh("px", "grep -c " + placeholder + " /root/env.txt"))
                        .out()
                        .strip())
                .isEqualTo("1");
        assertThat(egressLog()).contains("SECRET GET http://" + api + "/secret substituted TOKEN");
    }

    @Test
    void inferenceBridgeStreamsACompletionAndThrottlesABurst() throws Exception {
        assertThat(ok(sh("px", "echo $OPENAI_BASE_URL $OPENAI_API_KEY")).out().strip())
                .isEqualTo("http://127.0.0.1:11435/v1 airlock-inference-bridge");
        String request = "curl -sSN $OPENAI_BASE_URL/chat/completions -H 'Content-Type: application/json'"
                + " -d '{\"model\":\"m\",\"stream\":true,\"messages\":[]}'";
        assertThat(ok(sh("px", request)).out()).isEqualTo(TestServers.SSE);
        assertThat(servers.header("/v1/chat/completions", "authorization")).containsExactly("Bearer " + UPSTREAM_KEY);
        // 3 requests a minute and one is spent: of six at once, at most two more pass.
        String codes = ok(sh(
                        "px",
                        "for i in 1 2 3 4 5 6; do curl -s -o /tmp/r$i -w '%{http_code}\\n' -d '{}'"
                                + " $OPENAI_BASE_URL/chat/completions; done; cat /tmp/r6"))
                .out();
        assertThat(codes.lines().filter("429"::equals).count()).isGreaterThanOrEqualTo(4);
        assertThat(codes).contains("request limit of 3 per minute reached");
        String usage = ok(cli.run("stats", "--inference", "px")).out();
        assertThat(usage).containsPattern("px\\s+[1-3]\\s+[4-6]\\s");
        assertThat(egressLog()).contains("THROTTLE inference POST /v1/chat/completions request limit");

        // The counts outlive the daemon: killed, restarted (with the same environment), they are still there.
        long daemon = Long.parseLong(
                Files.readString(dirs.runtime().resolve("airlockd.pid")).strip());
        ProcessHandle.of(daemon).ifPresent(ProcessHandle::destroyForcibly);
        assertThat(dev.airlock.host.ProcessExit.await(daemon, java.time.Duration.ofSeconds(30)))
                .isTrue();
        String after = ok(cli.run(daemonEnv, new byte[0], "stats", "--inference", "px"))
                .out();
        assertThat(after.lines().skip(1).toList())
                .isEqualTo(usage.lines().skip(1).toList());
        assertThat(ok(sh("px", "echo $OPENAI_BASE_URL")).out().strip()).isEqualTo("http://127.0.0.1:11435/v1");
    }

    @Test
    void noneHasNoInterfaceButLoopbackAndNoRoute() {
        String links =
                ok(sh("nonet", "ip -o link show | awk -F': ' '{print $2}'")).out();
        assertThat(links.strip()).isEqualTo("lo");
        assertThat(ok(sh("nonet", "tail -n +2 /proc/net/route | wc -l")).out().strip())
                .isEqualTo("0");
        assertThat(ok(sh("nonet", "env")).out()).doesNotContain("HTTP_PROXY");
    }

    @Test
    void proxyModeHasNoInterfaceEitherButProxyVariablesForEveryProcess() {
        assertThat(ok(sh("px", "ip -o link show | awk -F': ' '{print $2}'"))
                        .out()
                        .strip())
                .isEqualTo("lo");
        String env = ok(cli.run("exec", "--user", "airlock", "px", "--", "env")).out();
        assertThat(env)
                .contains("HTTPS_PROXY=http://127.0.0.1:3128")
                .contains("http_proxy=http://127.0.0.1:3128")
                .contains("NO_PROXY=localhost,127.0.0.1,::1");
    }

    @Test
    void allowedNameAnswersOverHttpAndHttps() {
        assertThat(ok(sh("px", "curl -sS http://" + api + "/plain")).out()).isEqualTo(TestServers.BODY + " /plain\n");
        assertThat(ok(sh("px", "curl -sSk https://" + apiTls + "/tls")).out()).isEqualTo(TestServers.BODY + " /tls\n");
        assertThat(ok(sh("px", "curl -sS http://deep.wild.test:" + servers.httpPort() + "/wild"))
                        .out())
                .isEqualTo(TestServers.BODY + " /wild\n");
        assertThat(egressLog())
                .contains("ALLOW GET http://" + api + "/plain -> 127.0.0.1:" + servers.httpPort())
                .contains("ALLOW CONNECT " + apiTls + " -> 127.0.0.1:" + servers.httpsPort());
    }

    @Test
    void nameNotOnTheListIsRefusedWithAMessageInTheGuestAndALogLine() {
        // other.test is pinned to the test server but not allowed: pinning is not permission.
        Cli.Result plain = sh("px", "curl -sS http://other.test:" + servers.httpPort() + "/x");
        assertThat(plain.out()).contains("airlock egress denied: other.test is not on the allowlist");
        Cli.Result tls = sh("px", "curl -sSv https://other.test:" + servers.httpsPort() + "/x");
        assertThat(tls.exit()).isNotZero();
        assertThat(tls.out() + tls.err()).contains("403 airlock egress denied: other.test is not on the allowlist");
        assertThat(servers.seen).doesNotContainKey("/x");
        assertThat(egressLog())
                .contains("DENY GET http://other.test:" + servers.httpPort() + "/x other.test is not on the allowlist")
                .contains("DENY CONNECT other.test:" + servers.httpsPort() + " other.test is not on the allowlist");
    }

    @Test
    void rawIpAddressesAreRefusedBeforeAnyConnection() {
        // Refused by rule before the proxy connects anywhere: no packet leaves for these addresses.
        Cli.Result meta = sh("px", "curl -sS http://169.254.169.254/latest/meta-data/");
        assertThat(meta.out()).contains("raw IP address 169.254.169.254 is not allowed");
        Cli.Result loop = sh("px", "curl -sS --noproxy '' http://127.0.0.1:" + servers.httpPort() + "/raw");
        assertThat(loop.out()).contains("raw IP address 127.0.0.1 is not allowed");
        assertThat(servers.seen).doesNotContainKey("/raw");
        assertThat(egressLog()).contains("DENY GET http://169.254.169.254/latest/meta-data/ raw IP address");
    }

    @Test
    void tlsServerNameDifferentFromTheConnectNameIsRefused() {
        // curl sends CONNECT api.test (allowed) but says evil.test in its ClientHello.
        Cli.Result r = sh(
                "px",
                "curl -sSk https://evil.test:" + servers.httpsPort() + "/sni --connect-to evil.test:"
                        + servers.httpsPort() + ":" + apiTls);
        assertThat(r.exit()).isNotZero();
        assertThat(r.out() + r.err()).containsIgnoringCase("access denied");
        assertThat(servers.seen).doesNotContainKey("/sni");
        assertThat(egressLog())
                .contains(
                        "DENY CONNECT " + apiTls + " TLS server name evil.test differs from the CONNECT name api.test");
    }

    @Test
    void allowedNameThatResolvesIntoADeniedRangeIsRefused() {
        // localhost is on the allowlist, but the host resolves it to loopback, denied by rule.
        Cli.Result r = sh("px", "curl -sS --noproxy '' http://localhost:" + servers.httpPort() + "/lo");
        assertThat(r.out()).contains("localhost resolves to 127.0.0.1, a loopback (127.0.0.0/8) address");
        assertThat(servers.seen).doesNotContainKey("/lo");
        assertThat(egressLog()).contains("DENY GET http://localhost:" + servers.httpPort() + "/lo localhost resolves");
    }

    @Test
    void policyChangeOnARunningSandboxTakesEffect() {
        String url = "http://late.test:" + servers.httpPort() + "/late";
        assertThat(sh("px", "curl -sS " + url).out()).contains("late.test is not on the allowlist");
        ok(cli.run("network", "add-host", "px", "late.test:127.0.0.1"));
        ok(cli.run("network", "allow", "px", "late.test"));
        assertThat(ok(sh("px", "curl -sS " + url)).out()).isEqualTo(TestServers.BODY + " /late\n");
        ok(cli.run("network", "deny", "px", "late.test"));
        assertThat(sh("px", "curl -sS " + url).out()).contains("late.test is not on the allowlist");
        assertThat(ok(cli.run("network", "show", "px")).out()).contains("late.test:127.0.0.1");
    }

    private String idOf(String sandbox) {
        String json = ok(cli.run("inspect", sandbox)).out();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"id\"\\s*:\\s*\"([0-9a-f]+)\"")
                .matcher(json);
        assertThat(m.find()).as(json).isTrue();
        return m.group(1);
    }

    /** curl from the nat sandbox to the test server on the host's loopback, through slirp's host alias. */
    private Cli.Result natFetch(String path) {
        return sh("nt", "curl -sS --max-time 20 http://10.0.2.2:" + servers.httpPort() + path);
    }

    @Test
    void natHasANicADefaultRouteAndSlirpsResolverButNoProxy() {
        String links = ok(sh("nt", "ip -o link show | awk -F': ' '{print $2}'")).out();
        assertThat(links.lines().filter(l -> !l.equals("lo")).toList()).hasSize(1);
        assertThat(ok(sh("nt", "ip route")).out()).contains("default via 10.0.2.2");
        assertThat(ok(sh("nt", "cat /etc/resolv.conf")).out()).isEqualTo("nameserver 10.0.2.3\n");
        assertThat(ok(sh("nt", "env")).out()).doesNotContain("HTTP_PROXY");
    }

    @Test
    void natReachesTheHostLoopbackOnlyWhileARuleNamesIt() throws Exception {
        // 10.0.2.2 is the host's 127.0.0.1 as slirp sees it: loopback, a denied range. These
        // packets never leave this machine.
        Cli.Result raw = sh("nt", "exec 3<>/dev/tcp/10.0.2.2/" + servers.httpPort() + " && echo connected");
        assertThat(raw.exit()).isNotZero();
        assertThat(raw.err()).contains("Connection refused");
        Cli.Result refused = natFetch("/nat-none");
        assertThat(refused.exit()).as(refused.err()).isEqualTo(7);
        assertThat(servers.seen).doesNotContainKey("/nat-none");

        // '*' is any public address: loopback stays refused by its deny rule.
        ok(cli.run("network", "allow", "nt", "*"));
        assertThat(natFetch("/nat-any").exit()).isEqualTo(7);
        assertThat(servers.seen).doesNotContainKey("/nat-any");

        // A rule naming the address opens it, raw TCP and UDP alike.
        ok(cli.run("network", "allow", "nt", "127.0.0.1"));
        assertThat(ok(natFetch("/nat-ip")).out()).isEqualTo(TestServers.BODY + " /nat-ip\n");
        try (java.net.DatagramSocket udp = new java.net.DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            Thread echo = Thread.ofVirtual().start(() -> {
                try {
                    java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[64], 64);
                    udp.receive(p);
                    udp.send(new java.net.DatagramPacket(
                            "pong".getBytes(StandardCharsets.UTF_8), 4, p.getSocketAddress()));
                } catch (java.io.IOException e) {
                    // closed by the test
                }
            });
            Cli.Result u = sh(
                    "nt",
                    "exec 3<>/dev/udp/10.0.2.2/" + udp.getLocalPort()
                            + " && printf ping >&3 && timeout 20 head -c 4 <&3");
            assertThat(ok(u).out()).isEqualTo("pong");
            echo.join();
        }
        ok(cli.run("network", "deny", "nt", "127.0.0.1"));
        assertThat(natFetch("/nat-denied-again").exit()).isEqualTo(7);

        // A pin is an address for an allowed name, as in the proxy.
        ok(cli.run("network", "allow", "nt", "lo.test"));
        assertThat(ok(natFetch("/nat-pin")).out()).isEqualTo(TestServers.BODY + " /nat-pin\n");
        ok(cli.run("network", "deny", "nt", "lo.test", "*"));
        assertThat(natFetch("/nat-closed").exit()).isEqualTo(7);
        assertThat(servers.seen).doesNotContainKey("/nat-denied-again").doesNotContainKey("/nat-closed");

        assertThat(ok(cli.run("logs", "--egress", "nt")).out())
                .contains("POLICY nat refuse the denied ranges; refuse every other address")
                .contains("POLICY nat accept 127.0.0.1 (--allow-host 127.0.0.1)")
                .contains("accept any other public IPv4 address (--allow-host *)")
                .contains("accept 127.0.0.1 (lo.test, pinned by --add-host)");
    }

    @Test
    void natRulesRefuseEveryDeniedRangeOnTheHostAndGoWithTheSandbox() {
        ok(cli.run("run", "-d", "--name", "nt-gone", "--memory", "256m", "--network", "nat"));
        String id = idOf("nt-gone");
        String rules = String.join("\n", NatFirewall.rulesOf(id));
        // Private and metadata ranges are checked in the installed rules, not with packets.
        for (DeniedRanges.Range r : DeniedRanges.IPV4) {
            assertThat(rules).contains("-d " + r.cidr() + " -p tcp -j REJECT --reject-with tcp-reset");
        }
        assertThat(rules).contains("-m cgroup --path").doesNotContain("-j ACCEPT");
        dev.airlock.host.NatCgroup group = dev.airlock.host.NatCgroup.of(dirs, id);
        assertThat(group.exists()).isTrue();
        ok(cli.run("rm", "-f", "nt-gone"));
        assertThat(NatFirewall.rulesOf(id)).isEmpty();
        assertThat(group.exists()).isFalse();
    }

    @Test
    void secretReachesItsBoundHttpsUpstreamThroughTheSandboxCaAndNeverTheGuest() {
        String placeholder = ok(sh("px", "echo $TOKEN")).out().strip();
        String auth = " -H \"Authorization: Bearer $TOKEN\" ";
        // Normal certificate verification in the guest (no -k): it trusts the sandbox CA.
        Cli.Result r = ok(sh("px", "curl -sSv" + auth + "https://" + apiTls + "/secret-tls"));
        assertThat(r.out()).isEqualTo(TestServers.BODY + " /secret-tls\n");
        assertThat(r.err()).contains("issuer: CN=Airlock sandbox px interception CA");
        assertThat(servers.header("/secret-tls", "authorization")).containsExactly("Bearer " + REAL_SECRET);
        // Keep-alive: the second request rides the first one's connection and is substituted too.
        assertThat(ok(sh(
                                "px",
                                "curl -sS -o /dev/null -o /dev/null -w '%{num_connects} '" + auth + "https://" + apiTls
                                        + "/ka1 https://" + apiTls + "/ka2"))
                        .out())
                .isEqualTo("1 0 ");
        assertThat(servers.header("/ka2", "authorization")).containsExactly("Bearer " + REAL_SECRET);
        // A request body (chunked) goes through, and a streamed response arrives event by event.
        assertThat(ok(sh(
                                "px",
                                "echo '{\"stream\":true}' | curl -sSN -H 'Transfer-Encoding: chunked' --data-binary @-"
                                        + auth + "https://" + apiTls + "/v1/chat/completions"))
                        .out())
                .isEqualTo(TestServers.SSE);
        assertThat(servers.header("/v1/chat/completions", "authorization")).containsExactly("Bearer " + REAL_SECRET);
        // Nothing the guest can read holds the value: environments, files, the CA it trusts.
        ok(sh("px", "env > /root/env-tls.txt"));
        Cli.Result found = sh(
                "px",
                "grep -rsl -- '" + REAL_SECRET + "' /root /tmp /etc /home /var /usr/local /proc/[0-9]*/environ; true");
        assertThat(found.out()).isEmpty();
        assertThat(ok(sh("px", "grep -c " + placeholder + " /root/env-tls.txt"))
                        .out()
                        .strip())
                .isEqualTo("1");
        assertThat(ok(sh("px", "grep -c 'PRIVATE KEY' " + InterceptionCa.GUEST_BUNDLE + " || true"))
                        .out()
                        .strip())
                .isEqualTo("0");
        assertThat(egressLog())
                .contains("INTERCEPT CONNECT " + apiTls + " TLS terminated")
                .contains("SECRET GET https://" + apiTls + "/secret-tls substituted TOKEN");
    }

    @Test
    void aBoundHostEchoingTheSecretHandsTheGuestOnlyAMask() {
        String mask = "*".repeat(REAL_SECRET.length());
        String auth = " -H \"Authorization: Bearer $TOKEN\" ";
        for (String url : java.util.List.of("http://" + api + "/echo", "https://" + apiTls + "/echo")) {
            Cli.Result r = ok(sh("px", "curl -sS -D - -o /tmp/echo-body" + auth + url + " && cat /tmp/echo-body"));
            assertThat(servers.header("/echo", "authorization")).containsExactly("Bearer " + REAL_SECRET);
            assertThat(r.out())
                    .doesNotContain(REAL_SECRET)
                    .containsIgnoringCase("X-Echo-Authorization: Bearer " + mask)
                    .contains("you sent: Bearer " + mask);
        }
        // TRACE would echo the request, secret included: refused before it leaves.
        Cli.Result trace = sh("px", "curl -sS -X TRACE" + auth + "http://" + api + "/trace");
        assertThat(trace.out()).contains("TRACE is refused").doesNotContain(REAL_SECRET);
        assertThat(servers.seen).doesNotContainKey("/trace");
    }

    @Test
    void httpsToAHostWithoutABoundSecretIsNotIntercepted() {
        // The guest trusts the test servers' CA only for this request: if the proxy terminated
        // TLS, curl would see the sandbox CA's certificate and fail.
        ok(sh("px", "printf '%s' '" + servers.upstreamCa.certificatePem() + "' > /tmp/upstream-ca.pem"));
        Cli.Result r = ok(sh(
                "px",
                "curl -sSv --cacert /tmp/upstream-ca.pem -H \"Authorization: Bearer $TOKEN\" https://deep.wild.test:"
                        + servers.httpsPort() + "/clear"));
        assertThat(r.out()).isEqualTo(TestServers.BODY + " /clear\n");
        assertThat(r.err()).contains("issuer: CN=" + TestServers.UPSTREAM_CA_NAME);
        String placeholder = ok(sh("px", "echo $TOKEN")).out().strip();
        assertThat(servers.header("/clear", "authorization")).containsExactly("Bearer " + placeholder);
        // And with the guest's own trust store it fails: the guest does not trust that CA.
        Cli.Result own = sh("px", "curl -sS https://deep.wild.test:" + servers.httpsPort() + "/own-trust");
        assertThat(own.exit()).isNotZero();
        assertThat(own.err()).containsIgnoringCase("certificate");
        assertThat(egressLog()).doesNotContain("INTERCEPT CONNECT deep.wild.test");
    }

    @Test
    void interceptedUpstreamWithAnUntrustedCertificateIsRefusedWithAMessage() {
        Cli.Result r = ok(sh(
                "px",
                "curl -sS -w '\\n%{http_code}' -H \"Authorization: Bearer $OTHER_TOKEN\" https://untrusted.test:"
                        + servers.untrustedPort() + "/untrusted"));
        String where = "untrusted.test:" + servers.untrustedPort();
        assertThat(r.out())
                .contains("the TLS certificate of " + where + " is not trusted")
                .contains(UpstreamTls.EXTRA_CA_VARIABLE)
                .endsWith("502");
        assertThat(servers.seen).doesNotContainKey("/untrusted");
        assertThat(egressLog())
                .contains("FAIL CONNECT " + where + " the TLS certificate of " + where + " is not trusted");
    }
}
