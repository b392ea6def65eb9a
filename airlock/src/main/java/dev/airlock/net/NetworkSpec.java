package dev.airlock.net;

import dev.airlock.sandbox.SandboxException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * A sandbox's network settings as given on the command line and kept in its directory
 * ({@code network.json}): the mode, the egress allowlist, pinned names and published ports.
 *
 * @param mode {@code none} (default), {@code proxy} or {@code nat}
 * @param allowHosts names ({@code api.example.com}), wildcards ({@code *.npmjs.org}: any
 *     subdomain, not the bare name), {@code *} (any name), or an IP literal to allow that address
 * @param addHosts {@code NAME:IP} pins, Docker's {@code --add-host}
 * @param ports {@code [HOSTIP:]HOSTPORT:GUESTPORT}
 * @param hostCa whether the sandbox trusts the CAs the host trusts beyond the usual public ones
 *     (see {@link HostCas}); null (settings kept before there was a choice) means yes
 */
public record NetworkSpec(
        String mode,
        List<String> allowHosts,
        List<String> addHosts,
        List<String> ports,
        @Nullable Boolean hostCa) {
    public static final List<String> MODES = List.of("none", "proxy", "nat");
    private static final Pattern NAME =
            Pattern.compile("(\\*|(\\*\\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*)");

    public NetworkSpec {
        mode = mode.toLowerCase(Locale.ROOT);
        if (!MODES.contains(mode)) {
            throw new SandboxException("unknown network mode '" + mode + "': use none, proxy or nat");
        }
        List<String> allow = new ArrayList<>();
        for (String h : allowHosts) {
            allow.add(normalizeRule(h));
        }
        allowHosts = List.copyOf(allow);
        addHosts = List.copyOf(addHosts);
        pins(addHosts); // validates
        List<String> canonical = new ArrayList<>();
        for (String p : ports) {
            canonical.add(PortMapping.parse(p).toString());
        }
        ports = List.copyOf(canonical);
        if (mode.equals("none") && (!allowHosts.isEmpty() || !addHosts.isEmpty())) {
            throw new SandboxException("--allow-host and --add-host need --network proxy or nat (the default, none,"
                    + " has no network at all)");
        }
        if (mode.equals("nat")) {
            for (String rule : allowHosts) {
                if (rule.startsWith("*.")) {
                    throw new SandboxException("--allow-host '" + rule + "' cannot be enforced with --network nat:"
                            + " its rules are IP addresses, and a wildcard names no address; list the host names,"
                            + " use '*' (any public address) or use --network proxy");
                }
            }
        }
    }

    public NetworkSpec(String mode, List<String> allowHosts, List<String> addHosts, List<String> ports) {
        this(mode, allowHosts, addHosts, ports, null);
    }

    /** Whether the host's extra CAs go into the sandbox's trust store: unless turned off. */
    public boolean trustsHostCas() {
        return !Boolean.FALSE.equals(hostCa);
    }

    public NetworkSpec withHostCa(boolean trust) {
        return new NetworkSpec(mode, allowHosts, addHosts, ports, trust);
    }

    public static NetworkSpec none() {
        return new NetworkSpec("none", List.of(), List.of(), List.of());
    }

    public boolean proxy() {
        return mode.equals("proxy");
    }

    /** A real NIC with user-mode NAT, filtered on the host by IP (see {@link NatFirewall}). */
    public boolean nat() {
        return mode.equals("nat");
    }

    private static String normalizeRule(String rule) {
        String r = rule.trim().toLowerCase(Locale.ROOT);
        if (r.endsWith(".")) {
            r = r.substring(0, r.length() - 1);
        }
        if (isIpLiteral(r)) {
            return literal(r).getHostAddress();
        }
        if (!NAME.matcher(r).matches()) {
            throw new SandboxException(
                    "--allow-host '" + rule + "' is not a host name, *.domain wildcard or IP address");
        }
        return r;
    }

    /** The {@code --add-host} pins, name to address. */
    public Map<String, InetAddress> pins() {
        return pins(addHosts);
    }

    private static Map<String, InetAddress> pins(List<String> entries) {
        Map<String, InetAddress> out = new LinkedHashMap<>();
        for (String e : entries) {
            int colon = e.indexOf(':');
            if (colon <= 0 || colon == e.length() - 1) {
                throw new SandboxException("--add-host '" + e + "' is not NAME:IP, e.g. api.test:127.0.0.1");
            }
            String name = e.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String ip = e.substring(colon + 1).trim();
            if (ip.startsWith("[") && ip.endsWith("]")) {
                ip = ip.substring(1, ip.length() - 1);
            }
            if (!NAME.matcher(name).matches() || name.contains("*")) {
                throw new SandboxException("--add-host '" + e + "': '" + name + "' is not a host name");
            }
            if (!isIpLiteral(ip)) {
                throw new SandboxException("--add-host '" + e + "': '" + ip + "' is not an IP address");
            }
            out.put(name, literal(ip));
        }
        return out;
    }

    /** Whether a name is on the allowlist (exactly, by wildcard, or by {@code *}). */
    public @Nullable String allowingRule(String host) {
        for (String rule : allowHosts) {
            if (rule.equals("*") || rule.equals(host)) {
                return rule;
            }
            if (rule.startsWith("*.") && host.endsWith(rule.substring(1))) {
                return rule;
            }
        }
        return null;
    }

    static boolean isIpLiteral(String s) {
        return s.contains(":") || s.matches("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
    }

    /** Parses an IP literal without any name lookup. */
    static InetAddress literal(String s) {
        try {
            if (!isIpLiteral(s) || (s.contains(":") && !s.matches("[0-9a-fA-F:.%]+"))) {
                throw new UnknownHostException(s);
            }
            return InetAddress.getByName(s);
        } catch (UnknownHostException e) {
            throw new SandboxException("'" + s + "' is not an IP address");
        }
    }

    /** The same settings with a changed allowlist and pins (a policy change on a running sandbox). */
    public NetworkSpec withPolicy(List<String> allow, List<String> add) {
        return new NetworkSpec(mode, allow, add, ports, hostCa);
    }

    public NetworkSpec withPorts(List<String> newPorts) {
        return new NetworkSpec(mode, allowHosts, addHosts, newPorts, hostCa);
    }
}
