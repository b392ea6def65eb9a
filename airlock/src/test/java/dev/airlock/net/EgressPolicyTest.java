package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.sandbox.SandboxException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The policy's decisions without traffic. Names that would resolve into the metadata service or
 * a private network cannot be made on this host without a DNS server, so the resolver here is a
 * fixed table standing in for DNS; everything else is the production code path.
 */
class EgressPolicyTest {
    private static final Map<String, String> DNS = Map.of(
            "metadata.test", "169.254.169.254",
            "lan.test", "192.168.1.10",
            "cgnat.test", "100.64.0.7",
            "ula.test", "fd00::1",
            "mapped.test", "::ffff:10.0.0.1",
            "public.test", "93.184.216.34",
            "mixed.test", "10.0.0.1");

    private static EgressPolicy policy(List<String> allow, List<String> add) {
        return new EgressPolicy(new NetworkSpec("proxy", allow, add, List.of()), host -> {
            String ip = DNS.get(host);
            if (ip == null) {
                throw new UnknownHostException(host);
            }
            return new InetAddress[] {InetAddress.getByName(ip)};
        });
    }

    private static String denial(EgressDecision d) {
        assertThat(d).isInstanceOf(EgressDecision.Deny.class);
        return ((EgressDecision.Deny) d).reason();
    }

    @Test
    void namesResolvingIntoDeniedRangesAreRefusedUnlessNamedExplicitly() {
        EgressPolicy p = policy(List.of("*"), List.of());
        assertThat(denial(p.decide("metadata.test"))).contains("169.254.169.254, a cloud metadata");
        assertThat(denial(p.decide("lan.test"))).contains("private (RFC 1918)");
        assertThat(denial(p.decide("cgnat.test"))).contains("shared address space (100.64.0.0/10)");
        assertThat(denial(p.decide("ula.test"))).contains("unique local (fc00::/7)");
        assertThat(denial(p.decide("mapped.test"))).contains("private (RFC 1918)");
        assertThat(p.decide("public.test")).isInstanceOf(EgressDecision.Allow.class);
        // Naming the address explicitly is the way in.
        assertThat(policy(List.of("*", "169.254.169.254"), List.of()).decide("metadata.test"))
                .isInstanceOf(EgressDecision.Allow.class);
        assertThat(policy(List.of("lan.test"), List.of("lan.test:192.168.1.10")).decide("lan.test"))
                .isEqualTo(new EgressDecision.Allow(
                        InetAddress.ofLiteral("192.168.1.10"),
                        "allowed by lan.test, pinned to 192.168.1.10 by --add-host"));
    }

    @Test
    void wildcardsMatchSubdomainsOnly() {
        EgressPolicy p = policy(List.of("*.npmjs.org"), List.of("registry.npmjs.org:93.184.216.34"));
        assertThat(p.decide("registry.npmjs.org")).isInstanceOf(EgressDecision.Allow.class);
        assertThat(denial(p.decide("npmjs.org"))).contains("not on the allowlist");
        assertThat(denial(p.decide("evilnpmjs.org"))).contains("not on the allowlist");
    }

    @Test
    void rawAddressesNeedARuleNamingThem() {
        assertThat(denial(policy(List.of("*"), List.of()).decide("10.0.0.1"))).contains("raw IP address 10.0.0.1");
        assertThat(denial(policy(List.of("*"), List.of()).decide("[fd00::1]"))).contains("raw IP address");
        assertThat(policy(List.of("10.0.0.1"), List.of()).decide("10.0.0.1")).isInstanceOf(EgressDecision.Allow.class);
    }

    @Test
    void unresolvableNamesAreRefused() {
        assertThat(denial(policy(List.of("nowhere.test"), List.of()).decide("nowhere.test")))
                .isEqualTo("cannot resolve nowhere.test on the host");
    }

    @Test
    void badRulesAreClearErrors() {
        assertThatThrownBy(() -> new NetworkSpec("proxy", List.of("bad host"), List.of(), List.of()))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("is not a host name");
        assertThatThrownBy(() -> new NetworkSpec("proxy", List.of(), List.of("api.test"), List.of()))
                .hasMessageContaining("is not NAME:IP");
        assertThatThrownBy(() -> new NetworkSpec("proxy", List.of(), List.of("api.test:nope"), List.of()))
                .hasMessageContaining("is not an IP address");
        assertThatThrownBy(() -> new NetworkSpec("bridge", List.of(), List.of(), List.of()))
                .hasMessageContaining("unknown network mode 'bridge'");
        assertThatThrownBy(() -> new NetworkSpec("none", List.of(), List.of(), List.of("99999:80")))
                .hasMessageContaining("is not [HOSTIP:]HOSTPORT:GUESTPORT");
    }
}
