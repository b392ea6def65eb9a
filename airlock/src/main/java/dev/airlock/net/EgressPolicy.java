package dev.airlock.net;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Locale;
import java.util.Map;

/**
 * Decides where a sandbox may connect: the name must be on the allowlist, raw IP addresses need a
 * rule naming them, and names are resolved here (pinned names first) with every answer checked
 * against {@link DeniedRanges}. The caller connects to the returned address, never resolving the
 * name again, so a rebinding DNS answer cannot change the destination after the check.
 */
public final class EgressPolicy {
    /** Resolves names the policy does not pin; the host's resolver in production. */
    public interface Resolver {
        InetAddress[] resolve(String host) throws UnknownHostException;
    }

    private final NetworkSpec spec;
    private final Resolver resolver;

    public EgressPolicy(NetworkSpec spec, Resolver resolver) {
        this.spec = spec;
        this.resolver = resolver;
    }

    public NetworkSpec spec() {
        return spec;
    }

    public EgressDecision decide(String rawHost) {
        String host = rawHost.toLowerCase(Locale.ROOT);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.endsWith(".")) {
            host = host.substring(0, host.length() - 1);
        }
        if (host.isEmpty()) {
            return new EgressDecision.Deny("no destination host given");
        }
        if (NetworkSpec.isIpLiteral(host)) {
            InetAddress a;
            try {
                a = NetworkSpec.literal(host);
            } catch (RuntimeException e) {
                return new EgressDecision.Deny("'" + host + "' is not a valid address");
            }
            if (spec.allowHosts().contains(a.getHostAddress())) {
                return new EgressDecision.Allow(a, "address allowed by --allow-host " + a.getHostAddress());
            }
            return new EgressDecision.Deny("raw IP address " + host
                    + " is not allowed; connect by a name on the allowlist (--allow-host NAME)");
        }
        String rule = spec.allowingRule(host);
        if (rule == null) {
            return new EgressDecision.Deny(host + " is not on the allowlist (allow it with --allow-host " + host
                    + " or: airlock network allow SANDBOX " + host + ")");
        }
        Map<String, InetAddress> pins = spec.pins();
        InetAddress pinned = pins.get(host);
        if (pinned != null) {
            return new EgressDecision.Allow(
                    pinned, "allowed by " + rule + ", pinned to " + pinned.getHostAddress() + " by --add-host");
        }
        InetAddress[] answers;
        try {
            answers = resolver.resolve(host);
        } catch (UnknownHostException e) {
            return new EgressDecision.Deny("cannot resolve " + host + " on the host");
        }
        String firstDenial = null;
        for (InetAddress a : answers) {
            String range = DeniedRanges.classify(a);
            if (range == null || spec.allowHosts().contains(a.getHostAddress())) {
                return new EgressDecision.Allow(a, "allowed by " + rule + ", resolved to " + a.getHostAddress());
            }
            if (firstDenial == null) {
                firstDenial = host + " resolves to " + a.getHostAddress() + ", a " + range
                        + " address, which is denied unless named explicitly (--add-host " + host + ":"
                        + a.getHostAddress() + " or --allow-host " + a.getHostAddress() + ")";
            }
        }
        return new EgressDecision.Deny(firstDenial != null ? firstDenial : "no address for " + host);
    }
}
