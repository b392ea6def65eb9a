package dev.airlock.net;

import static dev.airlock.net.NetworkTest.ok;
import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The host's trust and proxies reach the sandbox, with real clients in the guest: a loopback
 * HTTPS server whose certificate comes from a CA that only this test's host trust names (through
 * NODE_EXTRA_CA_CERTS in the daemon's environment, not the real host's trust store) is reached by
 * curl, Python and Node without any flag, and refused with {@code --no-host-ca}. Every allowed
 * request goes through a loopback upstream proxy that wants credentials, which the guest never
 * sees: the proxy mode's and the nat mode's (raw TCP, relayed by the daemon). Runs once per
 * runtime.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class HostTrustTest {
    abstract String runtime();

    private static final String IMAGE = "trust-test";
    private static final String PROXY_USER = "airlock-test";
    private static final String PROXY_PASSWORD = "upstream-pw-" + java.util.UUID.randomUUID();

    private AirlockDirs dirs;
    Cli cli;
    private TestServers servers;
    private LoopbackUpstreamProxy upstream;
    String https;

    /** Node's core https client ignores HTTPS_PROXY: the script opens the CONNECT tunnel itself. */
    private static final String NODE_GET = """
            const http = require('http'), tls = require('tls');
            const [host, port, path] = process.argv.slice(2);
            const proxy = new URL(process.env.HTTPS_PROXY);
            http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: host + ':' + port})
              .on('connect', (res, socket) => {
                if (res.statusCode !== 200) { console.error('proxy said ' + res.statusCode); process.exit(2); }
                const t = tls.connect({socket, servername: host}, () => {
                  t.write('GET ' + path + ' HTTP/1.1\\r\\nHost: ' + host + '\\r\\nConnection: close\\r\\n\\r\\n');
                });
                t.on('data', d => process.stdout.write(d));
                t.on('error', e => { console.error(e.code + ' ' + e.message); process.exit(1); });
              })
              .on('error', e => { console.error(e.message); process.exit(3); })
              .end();
            """;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("trust-" + runtime());
        cli = new Cli(dirs).inRuntime(runtime());
        Path tmp = Files.createTempDirectory("airlock-trust-test");
        servers = new TestServers(tmp);
        upstream = new LoopbackUpstreamProxy(PROXY_USER, PROXY_PASSWORD);
        https = "api.test:" + servers.httpsPort();
        // An image with curl, Python and Node, built by the CLI (cached by its content), before
        // the daemon and its upstream proxy exist.
        Path toml = tmp.resolve("airlock.toml");
        Files.writeString(toml, """
                [image]
                name = "%s"
                from = "base"
                packages = ["python3", "nodejs"]
                """.formatted(IMAGE));
        ok(cli.run("image", "build", "-f", toml.toString()));
        String proxyUrl = "http://" + PROXY_USER + ":" + PROXY_PASSWORD + "@127.0.0.1:" + upstream.port();
        Map<String, String> daemonEnv = Map.of(
                // the test CA, as a host names it for Node: the one way the daemon learns of it
                "NODE_EXTRA_CA_CERTS",
                servers.writeUpstreamCa(tmp).toString(),
                "HTTPS_PROXY",
                proxyUrl,
                "HTTP_PROXY",
                proxyUrl,
                "https_proxy",
                proxyUrl,
                "http_proxy",
                proxyUrl,
                "NO_PROXY",
                "",
                "no_proxy",
                "");
        ok(cli.run(daemonEnv, new byte[0], runArgs("trusting")));
        ok(cli.run(daemonEnv, new byte[0], runArgs("untrusting", "--no-host-ca")));
        // nat: raw TCP from the guest, through slirp on the host; 127.0.0.1 is the host's
        // loopback, which the guest reaches as 10.0.2.2.
        ok(cli.run(
                daemonEnv,
                new byte[0],
                "run",
                "-d",
                "--name",
                "natted",
                "--image",
                IMAGE,
                "--memory",
                "384m",
                "--network",
                "nat",
                "--allow-host",
                "127.0.0.1"));
        for (String name : new String[] {"trusting", "untrusting"}) {
            ok(cli.run(
                    NODE_GET.getBytes(StandardCharsets.UTF_8),
                    "exec",
                    "-i",
                    name,
                    "--",
                    "sh",
                    "-c",
                    "cat > /tmp/get.js"));
        }
    }

    private static String[] runArgs(String name, String... extra) {
        java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of(
                "run",
                "-d",
                "--name",
                name,
                "--image",
                IMAGE,
                "--memory",
                "384m",
                "--network",
                "proxy",
                "--allow-host",
                "api.test",
                "--add-host",
                "api.test:127.0.0.1"));
        args.addAll(java.util.List.of(extra));
        return args.toArray(String[]::new);
    }

    @AfterAll
    void tearDown() throws Exception {
        cli.run("rm", "-f", "trusting");
        cli.run("rm", "-f", "untrusting");
        cli.run("rm", "-f", "natted");
        servers.close();
        upstream.close();
        TestHost.cleanUp(dirs);
    }

    Cli.Result sh(String sandbox, String script) {
        return cli.run("exec", sandbox, "--", "bash", "-c", script);
    }

    String curl(String path) {
        return "curl -sS https://" + https + path;
    }

    static String python(String url) {
        return "python3 -c \"import urllib.request; print(urllib.request.urlopen('" + url + "').read().decode())\"";
    }

    String node(String path) {
        return "node /tmp/get.js api.test " + servers.httpsPort() + " " + path;
    }

    @Test
    void curlPythonAndNodeTrustTheHostsCaWithoutAnyFlag() {
        assertThat(ok(sh("trusting", curl("/curl"))).out()).contains(TestServers.BODY + " /curl");
        assertThat(ok(sh("trusting", python("https://" + https + "/python"))).out())
                .contains(TestServers.BODY + " /python");
        assertThat(ok(sh("trusting", node("/node"))).out()).contains(TestServers.BODY + " /node");
        // The CA is in the guest's own trust store, where update-ca-certificates keeps it.
        assertThat(ok(sh("trusting", "grep -l 'BEGIN CERTIFICATE' /usr/local/share/ca-certificates/airlock-host-*"))
                        .out())
                .isNotBlank();
    }

    @Test
    void withoutHostCaTheSameServerIsRefused() {
        Cli.Result c = sh("untrusting", curl("/curl-refused"));
        assertThat(c.exit()).as(c.out() + c.err()).isEqualTo(60); // CURLE_PEER_FAILED_VERIFICATION
        Cli.Result p = sh("untrusting", python("https://" + https + "/python-refused"));
        assertThat(p.exit()).isNotZero();
        assertThat(p.err()).contains("CERTIFICATE_VERIFY_FAILED");
        Cli.Result n = sh("untrusting", node("/node-refused"));
        assertThat(n.exit()).isNotZero();
        assertThat(n.err())
                .containsAnyOf(
                        "SELF_SIGNED_CERT_IN_CHAIN",
                        "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
                        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
        assertThat(servers.seen).doesNotContainKeys("/curl-refused", "/python-refused", "/node-refused");
        assertThat(ok(cli.run("network", "show", "untrusting")).out()).contains("not trusted (--no-host-ca)");
    }

    @Test
    void everyAllowedRequestGoesThroughTheUpstreamProxyWhoseCredentialsStayOnTheHost() {
        int before = upstream.carried.size();
        ok(sh("trusting", "curl -sS http://api.test:" + servers.httpPort() + "/plain"));
        ok(sh("trusting", curl("/tunnelled")));
        assertThat(servers.seen).containsKeys("/plain", "/tunnelled");
        assertThat(upstream.carried.subList(before, upstream.carried.size()))
                .contains("127.0.0.1:" + servers.httpPort(), "127.0.0.1:" + servers.httpsPort());
        assertThat(upstream.refused).isEmpty();
        assertThat(ok(cli.run("logs", "--egress", "trusting")).out()).contains("via upstream proxy 127.0.0.1:");
        // What the guest can see of itself: its processes' environments and its files.
        ok(sh("trusting", "env > /root/env.txt"));
        Cli.Result found = sh(
                "trusting",
                "grep -rsl -- '" + PROXY_PASSWORD + "' /root /tmp /etc /home /var /proc/[0-9]*/environ; true");
        assertThat(found.out()).isEmpty();
        assertThat(ok(sh("trusting", "echo $HTTPS_PROXY")).out().strip()).isEqualTo("http://127.0.0.1:3128");
    }

    @Test
    void natSandboxesReachTheirAllowedAddressesThroughTheUpstreamProxyAndNothingElse() {
        int before = upstream.carried.size();
        String plain = "curl -sS --max-time 30 http://10.0.2.2:" + servers.httpPort();
        assertThat(ok(sh("natted", plain + "/nat-plain")).out()).contains(TestServers.BODY + " /nat-plain");
        // TLS end to end (the relay sees only bytes), with the host's CA in the guest's trust.
        assertThat(ok(sh(
                                "natted",
                                "curl -sS --max-time 30 --resolve " + https + ":10.0.2.2 https://" + https
                                        + "/nat-tls"))
                        .out())
                .contains(TestServers.BODY + " /nat-tls");
        assertThat(upstream.carried.subList(before, upstream.carried.size()))
                .contains("127.0.0.1:" + servers.httpPort(), "127.0.0.1:" + servers.httpsPort());
        assertThat(upstream.refused).isEmpty();
        assertThat(ok(cli.run("logs", "--egress", "natted")).out())
                .contains("ALLOW nat TCP 127.0.0.1:" + servers.httpPort() + " via upstream proxy 127.0.0.1:"
                        + upstream.port() + " (--allow-host 127.0.0.1)");
        // The guest holds no proxy address or credentials: it only made a TCP connection.
        ok(sh("natted", "env > /root/env.txt"));
        Cli.Result found = sh(
                "natted",
                "grep -rsl -e '" + PROXY_PASSWORD + "' -e ':" + upstream.port()
                        + "' /root /tmp /etc /home /var /proc/[0-9]*/environ; true");
        assertThat(found.out()).isEmpty();

        // An address the rules do not accept is refused by the relay, before the upstream.
        ok(cli.run("network", "deny", "natted", "127.0.0.1"));
        int carried = upstream.carried.size();
        Cli.Result refused = sh("natted", plain + "/nat-refused");
        assertThat(refused.exit()).as(refused.out() + refused.err()).isNotZero();
        assertThat(servers.seen).doesNotContainKey("/nat-refused");
        assertThat(upstream.carried).hasSize(carried);
        assertThat(ok(cli.run("logs", "--egress", "natted")).out())
                .contains("DENY nat TCP 127.0.0.1:" + servers.httpPort()
                        + " 127.0.0.1 is not accepted by this sandbox's nat rules");
    }
}
