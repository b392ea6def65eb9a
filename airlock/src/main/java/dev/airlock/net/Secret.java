package dev.airlock.net;

import dev.airlock.sandbox.SandboxException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A credential that stays on the host: the guest's environment holds only {@link #placeholder},
 * and the egress proxy writes {@link #value} in its place into the credential headers of
 * requests bound for {@link #hosts} (every allowed host when empty; see {@link OutboundRequest}
 * for which headers), and masks the value in what those hosts send back ({@link SecretMask}).
 */
public record Secret(String name, String value, String placeholder, List<String> hosts) {
    private static final Pattern NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

    public Secret {
        if (!NAME.matcher(name).matches()) {
            throw new SandboxException("secret name '" + name + "' is not an environment variable name");
        }
        if (value.isEmpty()) {
            throw new SandboxException("secret " + name + " is empty");
        }
        if (value.chars().anyMatch(c -> (c < 0x20 && c != '\t') || c == 0x7f)) {
            // It goes into a header line: a line break would end the header there.
            throw new SandboxException("secret " + name + " contains a line break or another control character,"
                    + " which an HTTP header cannot carry");
        }
        hosts = List.copyOf(hosts);
    }

    /**
     * {@code NAME[@HOST,...]}: the value comes from the caller's environment variable NAME.
     *
     * @param lookup the caller's environment
     */
    public static Secret fromEnv(String spec, java.util.function.Function<String, String> lookup) {
        int at = spec.indexOf('@');
        String name = at < 0 ? spec : spec.substring(0, at);
        String value = lookup.apply(name);
        if (value == null) {
            throw new SandboxException("--secret " + spec + ": the host variable " + name + " is not set");
        }
        return create(name, value, at < 0 ? "" : spec.substring(at + 1));
    }

    /** A new secret with a fresh random placeholder. */
    public static Secret create(String name, String value, String hostList) {
        List<String> hosts = new ArrayList<>();
        for (String h : hostList.split(",")) {
            if (!h.isBlank()) {
                hosts.add(h.strip().toLowerCase(Locale.ROOT));
            }
        }
        byte[] random = new byte[12];
        new SecureRandom().nextBytes(random);
        return new Secret(name, value, "airlock-secret-" + HexFormat.of().formatHex(random), hosts);
    }

    /** Whether the real value may be sent to this host. */
    public boolean boundTo(String host) {
        if (hosts.isEmpty()) {
            return true;
        }
        for (String h : hosts) {
            if (h.equals(host) || (h.startsWith("*.") && host.endsWith(h.substring(1)))) {
                return true;
            }
        }
        return false;
    }

    /**
     * One request header line with the placeholders of the secrets bound to {@code host} replaced
     * by their values; the names of the secrets it used are added to {@code used}.
     */
    static String substitute(List<Secret> secrets, String host, String header, List<String> used) {
        String h = header;
        String lower = host.toLowerCase(Locale.ROOT);
        for (Secret secret : secrets) {
            if (h.contains(secret.placeholder()) && secret.boundTo(lower)) {
                h = h.replace(secret.placeholder(), secret.value());
                used.add(secret.name());
            }
        }
        return h;
    }

    /** Never the value: records print in logs and error messages. */
    @Override
    public String toString() {
        return "Secret[" + name + " -> " + hosts + "]";
    }
}
