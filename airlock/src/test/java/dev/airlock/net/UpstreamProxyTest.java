package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The host's upstream proxy settings, and CONNECT through a real loopback proxy with credentials. */
class UpstreamProxyTest {
    @Test
    void readsTheVariablesAsCurlDoes() {
        Map<String, String> env = Map.of(
                "HTTPS_PROXY", "http://corp%5Cuser:p%40ss@proxy.corp.test:8080",
                "https_proxy", "",
                "NO_PROXY", "localhost, .internal.test,10.1.2.3,*.svc.test");
        UpstreamProxy p = java.util.Objects.requireNonNull(UpstreamProxy.fromEnvironment(env::get, "https"));
        assertThat(p.host()).isEqualTo("proxy.corp.test");
        assertThat(p.port()).isEqualTo(8080);
        assertThat(p.authorization())
                .isEqualTo("Basic "
                        + java.util.Base64.getEncoder()
                                .encodeToString("corp\\user:p@ss".getBytes(StandardCharsets.UTF_8)));
        assertThat(p.toString()).doesNotContain("p@ss").doesNotContain("user");
        InetAddress someAddress = InetAddress.ofLiteral("192.0.2.1");
        assertThat(p.bypasses("localhost", someAddress)).isTrue();
        assertThat(p.bypasses("git.internal.test", someAddress)).isTrue();
        assertThat(p.bypasses("internal.test", someAddress)).isTrue();
        assertThat(p.bypasses("a.svc.test", someAddress)).isTrue();
        assertThat(p.bypasses("pypi.org", InetAddress.ofLiteral("10.1.2.3"))).isTrue();
        assertThat(p.bypasses("pypi.org", someAddress)).isFalse();
        assertThat(p.bypasses("notinternal.test", someAddress)).isFalse();
        assertThat(UpstreamProxy.fromEnvironment(env::get, "http")).isNull();
        assertThatThrownBy(() -> UpstreamProxy.fromEnvironment(Map.of("HTTPS_PROXY", "https://p:1")::get, "https"))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("http:// upstream proxies only");
    }

    @Test
    void tunnelsWithItsCredentialsAndReportsARefusal() throws Exception {
        try (LoopbackUpstreamProxy proxy = new LoopbackUpstreamProxy("u", "secret-pw");
                ServerSocket echo = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
            Thread.ofVirtual().start(() -> {
                try (Socket s = echo.accept()) {
                    // speaks first, as an SSH or SMTP server does: the tunnel must not eat it
                    s.getOutputStream().write("banner\n".getBytes(StandardCharsets.US_ASCII));
                    s.getOutputStream().write(s.getInputStream().readNBytes(3));
                } catch (IOException e) {
                    // the test fails on its own assertions
                }
            });
            UpstreamProxy good = UpstreamProxy.parse("http://u:secret-pw@127.0.0.1:" + proxy.port(), "", "HTTPS_PROXY");
            try (Socket s = good.connect(InetAddress.getLoopbackAddress(), echo.getLocalPort())) {
                s.getOutputStream().write("abc".getBytes(StandardCharsets.US_ASCII));
                assertThat(new String(s.getInputStream().readNBytes(10), StandardCharsets.US_ASCII))
                        .isEqualTo("banner\nabc");
            }
            assertThat(proxy.carried).containsExactly("127.0.0.1:" + echo.getLocalPort());
            UpstreamProxy bad = UpstreamProxy.parse("http://u:wrong@127.0.0.1:" + proxy.port(), "", "HTTPS_PROXY");
            assertThatThrownBy(() -> bad.connect(InetAddress.getLoopbackAddress(), echo.getLocalPort()))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("407")
                    .hasMessageNotContaining("wrong");
        }
    }
}
