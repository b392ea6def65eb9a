package dev.airlock.net;

import static dev.airlock.net.NetworkTest.ok;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Host trust and upstream proxies for microVM sandboxes, and what only microVMs have: forks. */
class MicrovmHostTrustTest extends HostTrustTest {
    @Override
    String runtime() {
        return "microvm";
    }

    @Test
    void aForkTrustsTheHostsCaAndUsesTheUpstreamToo() {
        ok(cli.run("fork", "trusting", "--name", "trusting-fork"));
        try {
            assertThat(ok(sh("trusting-fork", curl("/from-a-fork"))).out())
                    .contains(TestServers.BODY + " /from-a-fork");
            assertThat(ok(sh("trusting-fork", "echo $NODE_EXTRA_CA_CERTS"))
                            .out()
                            .strip())
                    .isEqualTo(InterceptionCa.GUEST_BUNDLE);
        } finally {
            cli.run("rm", "-f", "trusting-fork");
        }
    }
}
