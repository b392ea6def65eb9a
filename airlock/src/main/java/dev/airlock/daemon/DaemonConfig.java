package dev.airlock.daemon;

import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.toml.TomlMapper;

/**
 * The daemon's own settings, {@code <data>/airlockd.toml}, read when it starts:
 *
 * <pre>
 * [api]
 * listen = ["127.0.0.1:7070"]   # also serve the API on TCP (bearer token in &lt;data&gt;/api-token)
 * allow_non_loopback = false    # refuse a non-loopback address unless this says true
 * </pre>
 *
 * A missing file means the defaults (the unix socket only); an unknown key is an error in words.
 */
public record DaemonConfig(List<String> listen, boolean allowNonLoopback) {
    public static final String FILE = "airlockd.toml";
    private static final Set<String> API_KEYS = Set.of("listen", "allow_non_loopback");

    public static DaemonConfig read(Path data) {
        Path file = data.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            return new DaemonConfig(List.of(), false);
        }
        JsonNode root;
        try {
            root = new TomlMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new SandboxException("cannot read " + file + ": " + e.getMessage());
        } catch (JacksonException e) {
            throw new SandboxException(file + " is not valid TOML: " + e.getOriginalMessage());
        }
        for (String key : root.propertyNames()) {
            if (!key.equals("api")) {
                throw new SandboxException(file + ": unknown table [" + key + "]; allowed: [api]");
            }
        }
        JsonNode api = root.path("api");
        List<String> listen = new ArrayList<>();
        boolean allow = false;
        if (api.isObject()) {
            for (String key : api.propertyNames()) {
                if (!API_KEYS.contains(key)) {
                    throw new SandboxException(file + ": unknown key [api]." + key + "; allowed: " + API_KEYS);
                }
            }
            JsonNode l = api.path("listen");
            if (l.isString()) {
                listen.add(l.asString());
            } else if (l.isArray()) {
                for (JsonNode e : l) {
                    if (!e.isString()) {
                        throw new SandboxException(file + ": [api].listen holds \"HOST:PORT\" strings");
                    }
                    listen.add(e.asString());
                }
            } else if (!l.isMissingNode()) {
                throw new SandboxException(file + ": [api].listen must be \"HOST:PORT\" or a list of them");
            }
            JsonNode a = api.path("allow_non_loopback");
            if (!a.isMissingNode() && !a.isBoolean()) {
                throw new SandboxException(file + ": [api].allow_non_loopback must be true or false");
            }
            allow = a.asBoolean(false);
        }
        return new DaemonConfig(List.copyOf(listen), allow);
    }
}
