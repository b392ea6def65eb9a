package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.net.LoopbackUpstreamProxy;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code airlock image pull} on a host whose network lets nothing out but through its HTTP proxy:
 * {@code HTTPS_PROXY}/{@code HTTP_PROXY} name a loopback proxy that wants credentials, the
 * registry is Debian's docker-registry on loopback (so nothing leaves the machine), and every
 * request of the pull (the HTTPS attempt as a CONNECT, then the plain ones) goes through the
 * proxy with the credentials from the variable.
 */
class UpstreamProxyPullTest {
    private static final String USER = "corp-user";
    private static final String PASSWORD = "corp-pw-" + java.util.UUID.randomUUID();
    private static Path work;
    private static TestRegistry registry;
    private static LoopbackUpstreamProxy proxy;
    private static AirlockDirs dirs;
    private static Cli cli;

    @BeforeAll
    static void setUp() throws Exception {
        work = Files.createTempDirectory("airlock-proxy-pull-test");
        registry = TestRegistry.start(work, work.resolve("registry"), "");
        Path layout = TestImages.buildLayout(work, "v1");
        TestImages.push(layout, "v1", registry.host() + "/test/img:v1");
        proxy = new LoopbackUpstreamProxy(USER, PASSWORD);
        dirs = TestImages.privateStore(work);
        cli = new Cli(dirs);
    }

    @AfterAll
    static void tearDown() throws Exception {
        proxy.close();
        registry.close();
        TestHost.cleanUp(dirs); // its daemon too, which the CLI started on demand
        HostFiles.deleteTree(work);
    }

    private static Map<String, String> proxyEnv(String password) {
        String url = "http://" + USER + ":" + password + "@127.0.0.1:" + proxy.port();
        return Map.of("HTTPS_PROXY", url, "HTTP_PROXY", url, "NO_PROXY", "");
    }

    @Test
    void aPullGoesThroughTheHostsUpstreamProxyWithItsCredentials() {
        Cli.Result wrong =
                cli.run(proxyEnv("not-the-pw-4711"), new byte[0], "image", "pull", registry.host() + "/test/img:v1");
        assertThat(wrong.exit()).isNotZero();
        assertThat(wrong.err())
                .contains("refused its credentials")
                .doesNotContain("not-the-pw-4711")
                .doesNotContain("Exception");
        assertThat(proxy.carried).isEmpty();

        Cli.Result r = cli.run(proxyEnv(PASSWORD), new byte[0], "image", "pull", registry.host() + "/test/img:v1");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err() + r.out()).doesNotContain(PASSWORD);
        // Every connection to the registry went through the proxy: the one CONNECT of the HTTPS
        // attempt and the plain requests after it (the registry speaks HTTP).
        assertThat(proxy.carried).isNotEmpty().allMatch(t -> t.equals(registry.host()));
        assertThat(proxy.carried.size()).isGreaterThanOrEqualTo(4); // manifest, config, layers
        assertThat(cli.run("image", "inspect", registry.host() + "/test/img:v1").exit())
                .isZero();
    }
}
