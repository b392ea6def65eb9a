package dev.airlock.net;

import dev.airlock.sandbox.SandboxException;
import java.net.URI;

/**
 * The inference bridge of a sandbox: the OpenAI-compatible upstream the host forwards to, the API
 * key the host adds (never sent to the guest), and per-sandbox limits per minute (0 = none).
 */
public record InferenceConfig(String upstream, String apiKey, long requestsPerMinute, long bytesPerMinute) {
    public InferenceConfig {
        URI u;
        try {
            u = URI.create(upstream);
        } catch (IllegalArgumentException e) {
            throw new SandboxException("--inference '" + upstream + "' is not a URL");
        }
        if (!("http".equals(u.getScheme()) || "https".equals(u.getScheme())) || u.getHost() == null) {
            throw new SandboxException("--inference '" + upstream + "' must be an http:// or https:// URL, e.g."
                    + " http://127.0.0.1:8080/v1");
        }
        if (upstream.endsWith("/")) {
            upstream = upstream.substring(0, upstream.length() - 1);
        }
        if (requestsPerMinute < 0 || bytesPerMinute < 0) {
            throw new SandboxException("inference limits must not be negative");
        }
    }

    /** Never the key: records print in logs. */
    @Override
    public String toString() {
        return "InferenceConfig[" + upstream + ", " + requestsPerMinute + " requests/min, " + bytesPerMinute
                + " bytes/min]";
    }
}
