package dev.airlock.net;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * One guest request as the proxy sends it on: checked against the destination the policy
 * allowed, with secrets substituted, rewritten to origin form. Shared by plain HTTP through the
 * proxy ({@code GET http://host/...}) and requests inside intercepted TLS.
 *
 * <p>What is refused, and why:
 *
 * <ul>
 *   <li>{@code TRACE} and {@code TRACK}: the server echoes the request, headers and substituted
 *       secrets included, back to the guest.
 *   <li>A {@code Host} header or absolute-form target naming another host than the one the
 *       policy checked (the CONNECT host inside TLS): a server hosting several names on one
 *       address (a CDN) would route the request, secret included, to the other name.
 *   <li>Heads a server could read differently from the proxy: several {@code Host} headers,
 *       {@code Content-Length} with {@code Transfer-Encoding}, conflicting lengths, transfer
 *       codings other than {@code chunked}.
 * </ul>
 *
 * <p>Secrets are substituted only in credential headers ({@link #isCredentialHeader}):
 * {@code Authorization}, {@code Cookie}, and headers whose name says it carries a key, token,
 * secret, password, credential, session or signature ({@code X-Api-Key}, {@code Private-Token},
 * ...). A placeholder anywhere else ({@code User-Agent}, {@code Referer}, the URL, the body) is
 * sent unchanged: those are the places servers log and reflect. Requests to a host a secret is
 * bound to ask for an uncompressed response ({@code Accept-Encoding: identity}, no {@code TE}) so
 * that {@link ResponseRelay} can mask the value should the server send it back.
 */
final class OutboundRequest {
    private OutboundRequest() {}

    private static final Pattern CREDENTIAL =
            Pattern.compile(".*(key|token|secret|auth|passw|credential|session|signature|cookie).*");

    /** What to do with the request. */
    sealed interface Prepared permits Refused, Ready {}

    /** Answer the guest with this status and reason; send nothing upstream. */
    record Refused(int status, String reason) implements Prepared {}

    /**
     * Send {@code head} upstream, then the body by its framing.
     *
     * @param target the request as logged, e.g. {@code GET https://api.test:8443/v1}
     * @param contentLength the body's length when not chunked (0: none)
     * @param kept secrets whose placeholder stays in a header that is not a credential header
     */
    record Ready(
            String method,
            String target,
            byte[] head,
            List<String> substituted,
            List<String> kept,
            long contentLength,
            boolean chunked,
            boolean upgrade)
            implements Prepared {
        /** The log's SECRET lines for this request: what was substituted, and what was not. */
        void logSecrets(EgressLog log) {
            if (!substituted.isEmpty()) {
                log.record("SECRET", target, "substituted " + String.join(", ", substituted) + " in request headers");
            }
            if (!kept.isEmpty()) {
                log.record(
                        "SECRET",
                        target,
                        "left the placeholder of " + String.join(", ", kept)
                                + " unchanged: values are substituted only in credential headers (Authorization,"
                                + " Cookie, names with key, token, secret, auth, password, credential, session or"
                                + " signature)");
            }
        }
    }

    /** Whether a secret is substituted in this header (name in any case). */
    static boolean isCredentialHeader(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return n.equals("authorization")
                || n.equals("cookie")
                || CREDENTIAL.matcher(n).matches();
    }

    /**
     * @param scheme {@code http} for the plain proxy (absolute-form targets only, one request per
     *     connection) or {@code https} inside intercepted TLS (origin form, or absolute form naming
     *     the CONNECT host)
     * @param hp the destination the policy allowed
     */
    static Prepared prepare(HttpHead head, String scheme, EgressProxy.HostPort hp, List<Secret> secrets) {
        HttpHead.RequestLine rl;
        try {
            rl = head.requestLine();
        } catch (HttpHead.Malformed e) {
            return new Refused(400, "malformed request: " + e.getMessage());
        }
        String method = rl.method();
        String origin = scheme + "://" + authority(hp, scheme);
        if (method.equals("TRACE") || method.equals("TRACK")) {
            return new Refused(
                    405, method + " is refused: the server would echo the request, secrets included, to the guest");
        }
        if (method.equals("CONNECT")) {
            return new Refused(405, "CONNECT inside an intercepted connection");
        }
        String path;
        String target = rl.target();
        if (target.equals("*") && method.equals("OPTIONS")) {
            path = "*";
        } else if (target.startsWith("/")) {
            if (scheme.equals("http")) {
                return new Refused(
                        400, "this proxy takes absolute http:// URIs and CONNECT (for https), not " + target);
            }
            path = target;
        } else {
            URI uri;
            try {
                uri = new URI(target);
            } catch (URISyntaxException e) {
                return new Refused(400, "malformed request URI");
            }
            if (!scheme.equalsIgnoreCase(uri.getScheme()) || uri.getHost() == null) {
                return new Refused(
                        400,
                        scheme.equals("http")
                                ? "this proxy takes absolute http:// URIs and CONNECT (for https), not " + target
                                : "the request target must be a path or an " + scheme + ":// URI");
            }
            int port = uri.getPort() < 0 ? defaultPort(scheme) : uri.getPort();
            if (!sameHost(uri.getHost(), hp.host()) || port != hp.port()) {
                return new Refused(
                        403,
                        "the request names " + uri.getHost() + ":" + port + ", the connection was allowed for "
                                + hp.host() + ":" + hp.port());
            }
            path = uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/" : uri.getRawPath();
            if (uri.getRawQuery() != null) {
                path += "?" + uri.getRawQuery();
            }
        }
        String logTarget = method + " " + origin + (path.equals("*") ? " *" : path);
        String host;
        long length = 0;
        boolean chunked = false;
        try {
            host = head.single("host");
            String te = head.single("transfer-encoding");
            String cl = head.single("content-length");
            if (te != null) {
                if (!te.equalsIgnoreCase("chunked")) {
                    return new Refused(501, "Transfer-Encoding " + te + " (only chunked is passed on)");
                }
                if (cl != null) {
                    return new Refused(400, "Content-Length and Transfer-Encoding together");
                }
                chunked = true;
            } else if (cl != null) {
                length = parseLength(cl);
            }
        } catch (HttpHead.Malformed e) {
            return new Refused(400, "malformed request: " + e.getMessage());
        }
        if (host != null) {
            EgressProxy.HostPort named = EgressProxy.HostPort.parse(host, defaultPort(scheme));
            if (named == null || !sameHost(named.host(), hp.host())) {
                return new Refused(
                        403,
                        "the Host header (" + host + ") names another host than "
                                + (scheme.equals("http") ? "the request (" : "the CONNECT (") + hp.host() + ")");
            }
        }
        boolean bound = secrets.stream().anyMatch(s -> s.boundTo(hp.host().toLowerCase(Locale.ROOT)));
        boolean plain = scheme.equals("http");
        StringBuilder out = new StringBuilder(method + " " + path + " " + rl.version() + "\r\n");
        if (host == null) {
            out.append("Host: ").append(authority(hp, scheme)).append("\r\n");
        }
        List<String> substituted = new ArrayList<>();
        List<String> kept = new ArrayList<>();
        boolean upgrade = false;
        boolean encodingSet = false;
        for (HttpHead.Field f : head.fields()) {
            String name = f.lowerName();
            if (name.startsWith("proxy-") || name.equals("keep-alive") || (plain && name.equals("connection"))) {
                continue;
            }
            if (bound && name.equals("te")) {
                continue;
            }
            if (bound && name.equals("accept-encoding")) {
                if (!encodingSet) {
                    out.append(f.name()).append(": identity\r\n");
                    encodingSet = true;
                }
                continue;
            }
            if (name.equals("upgrade")) {
                upgrade = true;
            }
            String value = f.value();
            if (bound && isCredentialHeader(name)) {
                value = Secret.substitute(secrets, hp.host(), value, substituted);
            } else if (bound) {
                for (Secret s : secrets) {
                    if (value.contains(s.placeholder()) && s.boundTo(hp.host().toLowerCase(Locale.ROOT))) {
                        kept.add(s.name() + " in " + f.name());
                    }
                }
            }
            out.append(f.name()).append(": ").append(value).append("\r\n");
        }
        if (bound && !encodingSet) {
            out.append("Accept-Encoding: identity\r\n");
        }
        if (plain) {
            // One request per upstream connection: a reused proxy connection could otherwise carry
            // a later request for another host to this destination unchecked.
            out.append("Connection: close\r\n");
        }
        out.append("\r\n");
        return new Ready(
                method,
                logTarget,
                out.toString().getBytes(StandardCharsets.ISO_8859_1),
                List.copyOf(substituted),
                List.copyOf(kept),
                length,
                chunked,
                upgrade);
    }

    /** A Content-Length value: decimal digits only (no sign, no list), at most 18 of them. */
    static long parseLength(String value) throws HttpHead.Malformed {
        if (value.isEmpty() || value.length() > 18 || !value.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new HttpHead.Malformed("Content-Length '" + value + "' is not a number");
        }
        return Long.parseLong(value);
    }

    static boolean sameHost(String a, String b) {
        return strip(a).equalsIgnoreCase(strip(b));
    }

    private static String strip(String host) {
        String h = host;
        if (h.startsWith("[") && h.endsWith("]")) {
            h = h.substring(1, h.length() - 1);
        }
        return h.endsWith(".") ? h.substring(0, h.length() - 1) : h;
    }

    static int defaultPort(String scheme) {
        return scheme.equals("https") ? 443 : 80;
    }

    static String authority(EgressProxy.HostPort hp, String scheme) {
        String host = hp.host().contains(":") ? "[" + hp.host() + "]" : hp.host();
        return hp.port() == defaultPort(scheme) ? host : host + ":" + hp.port();
    }
}
