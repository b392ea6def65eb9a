package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How an allowlist becomes IP rules for --network nat (the rules themselves run in NetworkTest). */
class NatFirewallTest {
    private static InetAddress ip(String s) {
        return NetworkSpec.literal(s);
    }

    private static final EgressPolicy.Resolver RESOLVER = host -> switch (host) {
        case "api.test" -> new InetAddress[] {ip("203.0.113.7"), ip("2001:db8::7")};
        // Names a hostile or careless DNS answers with addresses in denied ranges; no packet is
        // sent to any of them, the rules are only computed.
        case "loop.test" -> new InetAddress[] {ip("127.0.0.1")};
        case "lan.test" -> new InetAddress[] {ip("10.1.2.4"), ip("203.0.113.8")};
        case "metadata.test" -> new InetAddress[] {ip("169.254.169.254")};
        default -> throw new UnknownHostException(host);
    };

    private static NatFirewall.Plan plan(List<String> allow, List<String> pins) {
        return NatFirewall.plan(new NetworkSpec("nat", allow, pins, List.of()), RESOLVER, List.of(ip("10.1.2.3")));
    }

    @Test
    void namesBecomeTheirIpv4AddressesAndLiteralsThemselves() {
        NatFirewall.Plan p = plan(List.of("api.test", "127.0.0.1", "gone.test"), List.of());
        assertThat(p.accepts())
                .extracting(a -> a.address().getHostAddress() + " " + a.why())
                .containsExactly("203.0.113.7 api.test, resolved on the host", "127.0.0.1 --allow-host 127.0.0.1");
        assertThat(p.notes()).containsExactly("gone.test does not resolve on the host");
        assertThat(p.anyPublic()).isFalse();
        assertThat(p.nameservers()).containsExactly(ip("10.1.2.3"));
    }

    @Test
    void aPinOpensItsAddressOnlyWhenItsNameIsAllowedExactly() {
        assertThat(plan(List.of("lo.test"), List.of("lo.test:127.0.0.1")).accepts())
                .extracting(a -> a.why())
                .containsExactly("lo.test, pinned by --add-host");
        NatFirewall.Plan any = plan(List.of("*"), List.of("lo.test:127.0.0.1"));
        assertThat(any.accepts()).isEmpty();
        assertThat(any.anyPublic()).isTrue();
    }

    @Test
    void noAllowlistRefusesEverythingIncludingDns() {
        NatFirewall.Plan p = plan(List.of(), List.of("lo.test:127.0.0.1"));
        assertThat(p.accepts()).isEmpty();
        assertThat(p.nameservers()).isEmpty();
        List<String> rules = NatFirewall.chainRules("AIRLOCK-N-x", p);
        assertThat(rules).noneMatch(r -> r.contains("ACCEPT"));
        assertThat(rules).contains("-A AIRLOCK-N-x -d 169.254.169.254/32 -p tcp -j REJECT --reject-with tcp-reset");
    }

    @Test
    void acceptsComeBeforeTheDeniedRangesAndAnyPublicLast() {
        List<String> rules = NatFirewall.chainRules("AIRLOCK-N-x", plan(List.of("*", "127.0.0.1"), List.of()));
        assertThat(rules.getFirst()).isEqualTo("-A AIRLOCK-N-x -d 127.0.0.1/32 -j ACCEPT");
        assertThat(rules.getLast()).isEqualTo("-A AIRLOCK-N-x -j ACCEPT");
        assertThat(rules).contains("-A AIRLOCK-N-x -d 10.1.2.3/32 -p udp --dport 53 -j ACCEPT");
    }

    @Test
    void aNameResolvingIntoADeniedRangeOpensNothingThereAsInTheProxy() {
        NatFirewall.Plan p = plan(List.of("loop.test", "lan.test", "metadata.test"), List.of());
        assertThat(p.accepts()).extracting(a -> a.address().getHostAddress()).containsExactly("203.0.113.8");
        assertThat(p.notes())
                .anyMatch(n -> n.startsWith("loop.test resolves to 127.0.0.1, a loopback (127.0.0.0/8) address"))
                .anyMatch(n -> n.startsWith("lan.test resolves to 10.1.2.4, a private (RFC 1918) address"))
                .anyMatch(n -> n.startsWith("metadata.test resolves to 169.254.169.254, a cloud metadata"));
        List<String> rules = NatFirewall.chainRules("AIRLOCK-N-x", p);
        assertThat(rules.stream().filter(r -> r.endsWith("-j ACCEPT") && !r.contains("--dport 53")))
                .containsExactly("-A AIRLOCK-N-x -d 203.0.113.8/32 -j ACCEPT");
        // The proxy's policy decides the same for the same answers.
        EgressPolicy proxy =
                new EgressPolicy(new NetworkSpec("proxy", List.of("loop.test"), List.of(), List.of()), RESOLVER);
        assertThat(proxy.decide("loop.test")).isInstanceOf(EgressDecision.Deny.class);
        // Naming the address itself is the way in, in both modes.
        NatFirewall.Plan named = plan(List.of("loop.test", "127.0.0.1"), List.of());
        assertThat(named.accepts())
                .extracting(a -> a.address().getHostAddress())
                .containsExactly("127.0.0.1");
    }
}
