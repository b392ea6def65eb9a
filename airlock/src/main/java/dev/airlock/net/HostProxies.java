package dev.airlock.net;

import java.io.IOException;
import java.net.Authenticator;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.PasswordAuthentication;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The host's upstream proxies ({@code HTTPS_PROXY}, {@code HTTP_PROXY}, {@code NO_PROXY}) for
 * Airlock's own HTTP clients on the host (image pulls), as {@link UpstreamProxy} reads them for
 * the egress proxy. These requests are the host's, not a sandbox's: the credentials stay in this
 * process.
 */
public record HostProxies(
        @Nullable UpstreamProxy https, @Nullable UpstreamProxy http) {
    /**
     * The JDK does not send Basic credentials to a proxy for a CONNECT tunnel unless this
     * property leaves Basic out; the user who put them in {@code HTTPS_PROXY} asked for exactly
     * that, as curl and npm send them. Set before the JDK's HTTP client first reads it (its
     * classes read it once); a value the user set is kept.
     */
    private static final String TUNNEL_DISABLED_SCHEMES = "jdk.http.auth.tunneling.disabledSchemes";

    public static HostProxies fromEnvironment(Function<String, @Nullable String> env) {
        return new HostProxies(UpstreamProxy.fromEnvironment(env, "https"), UpstreamProxy.fromEnvironment(env, "http"));
    }

    /** Allows Basic credentials toward proxies for CONNECT (call before any HttpClient is built). */
    public static void allowBasicForTunnels() {
        if (System.getProperty(TUNNEL_DISABLED_SCHEMES) == null) {
            System.setProperty(TUNNEL_DISABLED_SCHEMES, "");
        }
    }

    /** Points a client at these proxies (and answers their 407 with their credentials), if any. */
    public void configure(HttpClient.Builder client) {
        if (https == null && http == null) {
            return;
        }
        allowBasicForTunnels();
        client.proxy(new Selector(this));
        client.authenticator(new Credentials(this));
    }

    /** The proxy a request to {@code uri} goes through, or null for a direct connection. */
    public @Nullable UpstreamProxy forUri(URI uri) {
        UpstreamProxy p = "https".equalsIgnoreCase(uri.getScheme()) ? https : http;
        String host = uri.getHost();
        if (p == null || host == null) {
            return null;
        }
        String h = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        return p.bypasses(h, literalOrUnspecified(h)) ? null : p;
    }

    /**
     * The address of an IP literal, for NO_PROXY's address entries; for a name, an address no
     * entry names (names are matched as names: nothing is resolved here).
     */
    private static InetAddress literalOrUnspecified(String host) {
        try {
            return NetworkSpec.isIpLiteral(host) ? InetAddress.ofLiteral(host) : InetAddress.ofLiteral("0.0.0.0");
        } catch (IllegalArgumentException e) {
            return InetAddress.getLoopbackAddress();
        }
    }

    private static final class Selector extends ProxySelector {
        private final HostProxies proxies;

        Selector(HostProxies proxies) {
            this.proxies = proxies;
        }

        @Override
        public List<Proxy> select(URI uri) {
            UpstreamProxy p = proxies.forUri(uri);
            return p == null
                    ? List.of(Proxy.NO_PROXY)
                    : List.of(new Proxy(Proxy.Type.HTTP, InetSocketAddress.createUnresolved(p.host(), p.port())));
        }

        @Override
        public void connectFailed(URI uri, SocketAddress sa, IOException e) {
            // nothing to fall back to: the proxy was the way out
        }
    }

    /** Answers only the upstream proxies' own challenges, never a registry's. */
    private static final class Credentials extends Authenticator {
        private final HostProxies proxies;

        Credentials(HostProxies proxies) {
            this.proxies = proxies;
        }

        @Override
        protected @Nullable PasswordAuthentication getPasswordAuthentication() {
            if (getRequestorType() != RequestorType.PROXY) {
                return null;
            }
            for (UpstreamProxy p : new UpstreamProxy[] {proxies.https, proxies.http}) {
                if (p != null
                        && p.authorization() != null
                        && p.port() == getRequestingPort()
                        && p.host().equalsIgnoreCase(getRequestingHost())) {
                    return decode(p.authorization());
                }
            }
            return null;
        }

        private static @Nullable PasswordAuthentication decode(String authorization) {
            if (!authorization.toLowerCase(Locale.ROOT).startsWith("basic ")) {
                return null;
            }
            String pair = new String(Base64.getDecoder().decode(authorization.substring(6)), StandardCharsets.UTF_8);
            int colon = pair.indexOf(':');
            return new PasswordAuthentication(
                    pair.substring(0, colon), pair.substring(colon + 1).toCharArray());
        }
    }
}
