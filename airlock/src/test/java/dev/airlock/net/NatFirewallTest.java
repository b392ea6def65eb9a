package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

    @Test
    void theRelayFindsARedirectedConnectionsOriginalDestinationInTheConntrackTable(@TempDir Path dir) throws Exception {
        // The kernel's format, as /proc/net/nf_conntrack prints it: original tuple, then reply.
        Path table = dir.resolve("nf_conntrack");
        Files.writeString(table, """
                ipv4     2 udp      17 28 src=10.0.0.5 dst=10.1.2.3 sport=40000 dport=53 src=10.1.2.3 dst=10.0.0.5 \
                sport=53 dport=40000 mark=0 zone=0 use=2
                ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=58736 dport=9999 \
                src=127.0.0.1 dst=127.0.0.1 sport=47311 dport=58736 [ASSURED] mark=0 zone=0 use=2
                ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=203.0.113.7 sport=58736 dport=443 \
                src=127.0.0.1 dst=10.0.0.5 sport=47311 dport=58736 [ASSURED] mark=0 zone=0 use=2
                """);
        assertThat(NatRelay.originalDestination(table, new InetSocketAddress(ip("10.0.0.5"), 58736), 47311))
                .isEqualTo(new InetSocketAddress(ip("203.0.113.7"), 443));
        assertThat(NatRelay.originalDestination(table, new InetSocketAddress(ip("127.0.0.1"), 58736), 47311))
                .isEqualTo(new InetSocketAddress(ip("127.0.0.1"), 9999));
        // Another relay's connection, or one the table does not know: nothing to relay to.
        assertThat(NatRelay.originalDestination(table, new InetSocketAddress(ip("10.0.0.5"), 58736), 47312))
                .isNull();
        assertThat(NatRelay.originalDestination(table, new InetSocketAddress(ip("10.0.0.6"), 58736), 47311))
                .isNull();
    }

    /** The allowlist entry that makes the relay accept an address, or "refused". */
    private static String acceptedBy(NatFirewall.Plan plan, String address) {
        NatFirewall.Accept a = NatFirewall.accepting(plan, ip(address));
        return a == null ? "refused" : a.rule();
    }

    @Test
    void theRelayAcceptsExactlyWhatTheRulesAccept() {
        NatFirewall.Plan p = plan(List.of("api.test", "127.0.0.1"), List.of());
        assertThat(acceptedBy(p, "203.0.113.7")).isEqualTo("api.test");
        assertThat(acceptedBy(p, "127.0.0.1")).isEqualTo("127.0.0.1");
        assertThat(acceptedBy(p, "203.0.113.9")).isEqualTo("refused");
        NatFirewall.Plan any = plan(List.of("*"), List.of());
        assertThat(acceptedBy(any, "203.0.113.9")).isEqualTo("*");
        assertThat(acceptedBy(any, "10.1.2.4")).isEqualTo("refused");
        assertThat(acceptedBy(any, "169.254.169.254")).isEqualTo("refused");
        assertThat(acceptedBy(any, "127.0.0.1")).isEqualTo("refused");
        // The redirected TCP arrives at the relay's loopback port: accepted ahead of the refused loopback.
        assertThat(NatFirewall.chainRules("AIRLOCK-N-x", plan(List.of("api.test"), List.of()), 47311)
                        .getFirst())
                .isEqualTo("-A AIRLOCK-N-x -d 127.0.0.1/32 -p tcp --dport 47311 -j ACCEPT");
    }
}
