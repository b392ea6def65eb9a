package dev.airlock.net;

import dev.airlock.sandbox.SandboxException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The host's own HTTP proxy, as {@code HTTPS_PROXY}/{@code HTTP_PROXY}/{@code NO_PROXY} in the
 * daemon's environment name it: corporate networks often let nothing out without it. The egress
 * proxy reaches every allowed destination through it with {@code CONNECT}, sending its
 * credentials itself; the guest only ever sees its own proxy, so the credentials never enter a
 * sandbox.
 *
 * <p>The upstream is asked for the address Airlock's egress policy checked (not the name), so a
 * name cannot resolve to somewhere else there than the policy allowed.
 *
 * @param authorization the {@code Proxy-Authorization} value, or null without credentials
 * @param noProxy {@code NO_PROXY} entries, lower case: names (a suffix match, with or without a
 *     leading dot), addresses, or {@code *} for everything
 */
public record UpstreamProxy(String host, int port, @Nullable String authorization, List<String> noProxy) {
    private static final int MAX_REPLY = 16 << 10;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration REPLY_TIMEOUT = Duration.ofSeconds(30);

    @Override
    public String toString() {
        // Never the credentials: this may end up in a log or an error message.
        return "http://" + host + ":" + port + (authorization == null ? "" : " (with credentials)");
    }

    /**
     * The upstream for connections of a scheme ({@code https} for CONNECT tunnels, {@code http}
     * for plain requests), or null when the environment names none. Lower-case variables win,
     * as curl reads them.
     */
    public static @Nullable UpstreamProxy fromEnvironment(Function<String, @Nullable String> env, String scheme) {
        String name = scheme + "_proxy";
        String url = firstSet(env, name, name.toUpperCase(Locale.ROOT));
        if (url == null) {
            return null;
        }
        String noProxy = firstSet(env, "no_proxy", "NO_PROXY");
        return parse(url, noProxy == null ? "" : noProxy, name.toUpperCase(Locale.ROOT));
    }

    private static @Nullable String firstSet(Function<String, @Nullable String> env, String a, String b) {
        String v = env.apply(a);
        if (v == null || v.isBlank()) {
            v = env.apply(b);
        }
        return v == null || v.isBlank() ? null : v.strip();
    }

    static UpstreamProxy parse(String url, String noProxy, String variable) {
        String u = url.contains("://") ? url : "http://" + url;
        URI uri;
        try {
            uri = new URI(u);
        } catch (URISyntaxException e) {
            throw new SandboxException(variable + " is not a proxy URL (http://[USER:PASSWORD@]HOST:PORT)");
        }
        if (!"http".equalsIgnoreCase(uri.getScheme())) {
            throw new SandboxException(variable + " names a " + uri.getScheme()
                    + " proxy; Airlock's egress proxy speaks to http:// upstream proxies only (http://HOST:PORT)");
        }
        if (uri.getHost() == null) {
            throw new SandboxException(variable + " names no proxy host (http://[USER:PASSWORD@]HOST:PORT)");
        }
        String auth = null;
        String userInfo = uri.getRawUserInfo();
        if (userInfo != null) {
            int colon = userInfo.indexOf(':');
            String user = decode(colon < 0 ? userInfo : userInfo.substring(0, colon));
            String password = colon < 0 ? "" : decode(userInfo.substring(colon + 1));
            auth = "Basic "
                    + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        }
        List<String> entries = new ArrayList<>();
        for (String e : noProxy.split(",")) {
            String t = e.strip().toLowerCase(Locale.ROOT);
            if (!t.isEmpty()) {
                entries.add(t);
            }
        }
        String host = uri.getHost();
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        return new UpstreamProxy(host, uri.getPort() < 0 ? 80 : uri.getPort(), auth, List.copyOf(entries));
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    /** Whether {@code NO_PROXY} sends this destination around the upstream (by its name or address). */
    public boolean bypasses(String name, InetAddress address) {
        String n = name.toLowerCase(Locale.ROOT);
        if (n.endsWith(".")) {
            n = n.substring(0, n.length() - 1);
        }
        for (String e : noProxy) {
            if (e.equals("*") || e.equals(address.getHostAddress())) {
                return true;
            }
            String suffix = e.startsWith(".") ? e.substring(1) : e;
            if (suffix.startsWith("*.")) {
                suffix = suffix.substring(2);
            }
            if (n.equals(suffix) || n.endsWith("." + suffix)) {
                return true;
            }
        }
        return false;
    }

    /**
     * A connection to {@code address:port} through the upstream: connected, {@code CONNECT}
     * sent with the credentials, and the upstream's 2xx answer read (byte by byte, so nothing of
     * the destination's first bytes is consumed). Throws with the upstream's status line
     * otherwise.
     */
    public Socket connect(InetAddress address, int port) throws IOException {
        Socket s = new Socket();
        try {
            s.connect(new InetSocketAddress(host, this.port), (int) CONNECT_TIMEOUT.toMillis());
            String target = (address.getHostAddress().contains(":")
                            ? "[" + address.getHostAddress() + "]"
                            : address.getHostAddress())
                    + ":" + port;
            StringBuilder head = new StringBuilder()
                    .append("CONNECT ")
                    .append(target)
                    .append(" HTTP/1.1\r\nHost: ")
                    .append(target)
                    .append("\r\n");
            if (authorization != null) {
                head.append("Proxy-Authorization: ").append(authorization).append("\r\n");
            }
            head.append("\r\n");
            OutputStream out = s.getOutputStream();
            out.write(head.toString().getBytes(StandardCharsets.US_ASCII));
            out.flush();
            s.setSoTimeout((int) REPLY_TIMEOUT.toMillis());
            String statusLine = readReply(s.getInputStream());
            s.setSoTimeout(0);
            String[] parts = statusLine.split(" ", 3);
            if (parts.length < 2 || !parts[0].startsWith("HTTP/1.") || !parts[1].matches("2[0-9][0-9]")) {
                throw new IOException("the upstream proxy " + this + " refused CONNECT " + target + ": "
                        + UntrustedText.logField(
                                statusLine.length() > 200 ? statusLine.substring(0, 200) : statusLine));
            }
            return s;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    /** The reply's head up to its blank line, at most {@value #MAX_REPLY} bytes; its status line. */
    private static String readReply(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (matched < 4) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("the upstream proxy closed the connection before answering CONNECT");
            }
            if (head.size() == MAX_REPLY) {
                throw new IOException("the upstream proxy's answer to CONNECT is longer than " + MAX_REPLY + " bytes");
            }
            head.write(b);
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3))
                    ? matched + 1
                    : b == '\r' ? 1 : 0;
        }
        String text = head.toString(StandardCharsets.ISO_8859_1);
        int eol = text.indexOf("\r\n");
        return text.substring(0, eol);
    }
}
