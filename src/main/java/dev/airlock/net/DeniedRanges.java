package dev.airlock.net;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
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

    private static @Nullable String classify4(int a, int b, int c, int d) {
        if (a == 169 && b == 254 && c == 169 && d == 254) {
            return "cloud metadata (169.254.169.254)";
        }
        if (a == 127) {
            return "loopback (127.0.0.0/8)";
        }
        if (a == 10 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168)) {
            return "private (RFC 1918)";
        }
        if (a == 169 && b == 254) {
            return "link-local (169.254.0.0/16)";
        }
        if (a == 100 && b >= 64 && b <= 127) {
            return "shared address space (100.64.0.0/10)";
        }
        if (a == 0) {
            return "this network (0.0.0.0/8)";
        }
        if (a == 192 && b == 0 && c == 0) {
            return "IETF protocol assignments (192.0.0.0/24)";
        }
        if (a == 198 && (b == 18 || b == 19)) {
            return "benchmarking (198.18.0.0/15)";
        }
        if (a >= 224) {
            return a == 255 && b == 255 && c == 255 && d == 255 ? "broadcast" : "multicast or reserved";
        }
        return null;
    }
}
