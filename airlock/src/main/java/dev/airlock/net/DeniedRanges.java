package dev.airlock.net;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * Address ranges egress never reaches unless a rule names the address explicitly: this host,
 * the LAN, the cloud metadata service and other sandboxes' networks.
 */
public final class DeniedRanges {
    private DeniedRanges() {}

    /** Which denied range an address is in ("loopback", ...), or null when it is public. */
    public static @Nullable String classify(InetAddress a) {
        if (a instanceof Inet6Address v6) {
            byte[] b = v6.getAddress();
            boolean mapped = true;
            for (int i = 0; i < 10; i++) {
                mapped &= b[i] == 0;
            }
            if (mapped && (b[10] & 0xff) == 0xff && (b[11] & 0xff) == 0xff) {
                return classify4(b[12] & 0xff, b[13] & 0xff, b[14] & 0xff, b[15] & 0xff);
            }
            if (a.isLoopbackAddress()) {
                return "loopback (::1)";
            }
            if (a.isAnyLocalAddress()) {
                return "unspecified (::)";
            }
            if (a.isLinkLocalAddress()) {
                return "link-local (fe80::/10)";
            }
            if ((b[0] & 0xfe) == 0xfc) {
                return "unique local (fc00::/7)";
            }
            if (a.isMulticastAddress()) {
                return "multicast";
            }
            if ((b[0] & 0xff) == 0x20 && (b[1] & 0xff) == 0x01 && (b[2] & 0xff) == 0x0d && (b[3] & 0xff) == 0xb8) {
                return "documentation (2001:db8::/32)";
            }
            return null;
        }
        byte[] b = ((Inet4Address) a).getAddress();
        return classify4(b[0] & 0xff, b[1] & 0xff, b[2] & 0xff, b[3] & 0xff);
    }

    /** An IPv4 range in CIDR form and what it is. */
    public record Range(String cidr, String label) {
        boolean contains(int address) {
            int slash = cidr.indexOf('/');
            int bits = Integer.parseInt(cidr.substring(slash + 1));
            int mask = bits == 0 ? 0 : -1 << (32 - bits);
            return (address & mask) == (toInt(cidr.substring(0, slash)) & mask);
        }

        private static int toInt(String dotted) {
            int v = 0;
            for (String part : dotted.split("\\.")) {
                v = (v << 8) | Integer.parseInt(part);
            }
            return v;
        }
    }

    /**
     * The denied IPv4 ranges, most specific first: the proxy's policy classifies addresses with
     * them and {@code --network nat}'s host firewall turns each into a REJECT rule.
     */
    public static final List<Range> IPV4 = List.of(
            new Range("169.254.169.254/32", "cloud metadata (169.254.169.254)"),
            new Range("127.0.0.0/8", "loopback (127.0.0.0/8)"),
            new Range("10.0.0.0/8", "private (RFC 1918)"),
            new Range("172.16.0.0/12", "private (RFC 1918)"),
            new Range("192.168.0.0/16", "private (RFC 1918)"),
            new Range("169.254.0.0/16", "link-local (169.254.0.0/16)"),
            new Range("100.64.0.0/10", "shared address space (100.64.0.0/10)"),
            new Range("0.0.0.0/8", "this network (0.0.0.0/8)"),
            new Range("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
            new Range("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
            new Range("255.255.255.255/32", "broadcast"),
            new Range("224.0.0.0/3", "multicast or reserved"));

    private static @Nullable String classify4(int a, int b, int c, int d) {
        int address = (a << 24) | (b << 16) | (c << 8) | d;
        for (Range r : IPV4) {
            if (r.contains(address)) {
                return r.label();
            }
        }
        return null;
    }
}
