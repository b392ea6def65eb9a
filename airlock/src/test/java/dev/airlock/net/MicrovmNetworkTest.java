package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Networking of microVM sandboxes, and what only microVMs have: a fork's network. */
class MicrovmNetworkTest extends NetworkTest {
    @Override
    String runtime() {
        return "microvm";
    }

    @Test
    void aForkKeepsItsSourcesEgressPolicyAndSecretsButNotItsPorts() {
        ok(cli.run("fork", "px", "--name", "pxf"));
        try {
            // the clone's proxy knows the source's allowlist, pins and secret binding
            ok(sh("pxf", "curl -sS -H \"Authorization: Bearer $TOKEN\" http://" + api + "/secret-of-a-clone"));
            assertThat(servers.header("/secret-of-a-clone", "authorization")).containsExactly("Bearer " + REAL_SECRET);
            // and over HTTPS: the clone trusts the same sandbox CA, whose key its proxy holds
            ok(sh(
                    "pxf",
                    "curl -sS -H \"Authorization: Bearer $TOKEN\" https://api.test:" + servers.httpsPort()
                            + "/secret-of-a-clone-tls"));
            assertThat(servers.header("/secret-of-a-clone-tls", "authorization"))
                    .containsExactly("Bearer " + REAL_SECRET);
            assertThat(sh(
                                    "pxf",
                                    "curl -sS -o /dev/null -w '%{http_code}' http://other.test:" + servers.httpPort()
                                            + "/")
                            .out())
                    .isEqualTo("403");
            // the source still holds its published host ports; the clone has none
            assertThat(ok(cli.run("network", "show", "pxf")).out().lines())
                    .contains("publish     -")
                    .anyMatch(l -> l.startsWith("allow-host") && l.contains("api.test"));
        } finally {
            cli.run("rm", "-f", "pxf");
        }
    }
}
