package dev.airlock.e2b;

import dev.airlock.guest.GuestChannel;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.SandboxService;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * E2B's control plane (the REST API the SDK reaches at {@code E2B_API_URL}): create (v1 and v2),
 * get, list (v1 and v2), kill, set timeout, refresh, pause, resume and connect. A template id
 * names an Airlock image ({@code base} is Airlock's base image); the runtime is the endpoint's
 * default or the {@code airlock.runtime} metadata key. The timeout kills the sandbox when it
 * passes, as in E2B.
 */
final class ControlPlane {
    /** The envd version this endpoint behaves as: octet-stream uploads (0.5.7), no file metadata (0.6.2). */
    static final String ENVD_VERSION = "0.5.7";

    static final String RUNTIME_METADATA = "airlock.runtime";
    private static final long DEFAULT_TIMEOUT = 15;
    private static final long MAX_TIMEOUT = 24 * 3600;
    private static final Pattern ONE = Pattern.compile("/(?:v2/)?sandboxes/([^/]+)(/[a-z]+)?");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final E2bSandboxes sandboxes;
    private final SandboxService service;
    private final @Nullable String defaultRuntime;

    ControlPlane(E2bSandboxes sandboxes, @Nullable String defaultRuntime) {
        this.sandboxes = sandboxes;
        this.service = sandboxes.service();
        this.defaultRuntime = defaultRuntime;
    }

    void handle(Exchange ex) throws IOException, InterruptedException {
        String path = ex.path();
        String method = ex.method();
        if (path.equals("/sandboxes") || path.equals("/v2/sandboxes")) {
            switch (method) {
                case "POST" -> ex.json(201, create(ex.json()));
                case "GET" -> ex.json(200, list(ex, path.startsWith("/v2")));
                default -> throw new E2bException(405, method + " " + path + " is not supported");
            }
            return;
        }
        Matcher m = ONE.matcher(path);
        if (!m.matches()) {
            throw E2bException.notFound("no route " + method + " " + path + " (Airlock serves E2B's sandbox API only)");
        }
        String id = m.group(1);
        String action = m.group(2) == null ? "" : m.group(2);
        switch (method + " " + action) {
            case "GET " -> {
                E2bSandbox s = sandboxes.require(id);
                ex.json(200, detail(s, service.inspect(id)));
            }
            case "DELETE " -> {
                if (!sandboxes.kill(id)) {
                    throw E2bException.notFound("sandbox '" + id + "' not found");
                }
                ex.empty(204);
            }
            case "POST /timeout" -> {
                E2bSandbox s = sandboxes.require(id);
                long seconds = timeout(ex.json(), null);
                sandboxes.put(s.withEndAt(sandboxes.now().plusSeconds(seconds)));
                ex.empty(204);
            }
            case "POST /refreshes" -> {
                E2bSandbox s = sandboxes.require(id);
                long seconds = ConnectRpc.number(ex.json(), "duration", 60);
                if (seconds < 0 || seconds > 3600) {
                    throw E2bException.badRequest("duration must be between 0 and 3600 seconds");
                }
                Instant end = sandboxes.now().plusSeconds(seconds);
                if (end.isAfter(s.endAt())) {
                    sandboxes.put(s.withEndAt(end));
                }
                ex.empty(204);
            }
            case "POST /pause" -> {
                sandboxes.require(id);
                if (service.inspect(id).state() == SandboxState.PAUSED) {
                    throw new E2bException(409, "sandbox '" + id + "' is already paused");
                }
                sandboxes.dropSession(id);
                service.pause(id);
                ex.empty(204);
            }
            case "POST /resume", "POST /connect" -> {
                E2bSandbox s = sandboxes.require(id);
                JsonNode body = ex.json();
                boolean resumed = false;
                if (service.inspect(id).state() == SandboxState.PAUSED) {
                    service.resume(id);
                    resumed = true;
                } else if (action.equals("/resume")) {
                    throw new E2bException(409, "sandbox '" + id + "' is not paused");
                }
                if (body.has("timeout")) {
                    s = s.withEndAt(sandboxes.now().plusSeconds(timeout(body, null)));
                    sandboxes.put(s);
                }
                ex.json(resumed || action.equals("/resume") ? 201 : 200, sandbox(s));
            }
            default -> throw E2bException.notFound("no route " + method + " " + path);
        }
    }

    private static long timeout(JsonNode body, @Nullable Long fallback) {
        if (!body.has("timeout") && fallback != null) {
            return fallback;
        }
        long seconds = ConnectRpc.number(body, "timeout", -1);
        if (seconds < 0 || seconds > MAX_TIMEOUT) {
            throw E2bException.badRequest("timeout must be between 0 and " + MAX_TIMEOUT + " seconds");
        }
        return seconds;
    }

    private ObjectNode create(JsonNode body) throws IOException, InterruptedException {
        String template = ConnectRpc.requiredString(body, "templateID");
        long timeout = timeout(body, DEFAULT_TIMEOUT);
        Map<String, String> metadata = ProcessRpc.stringMap(body, "metadata");
        Map<String, String> envs = ProcessRpc.stringMap(body, "envVars");
        for (String name : envs.keySet()) {
            if (name.isEmpty() || name.contains("=") || name.indexOf('\0') >= 0) {
                throw E2bException.badRequest("invalid environment variable name '" + name + "'");
            }
        }
        List<String> allow = allowedHosts(body);
        String runtime = metadata.getOrDefault(RUNTIME_METADATA, defaultRuntime);
        byte[] bits = new byte[10];
        RANDOM.nextBytes(bits);
        String id = "e2b-" + HexFormat.of().formatHex(bits);
        CreateSpec spec = CreateSpec.builder()
                .name(id)
                .image(template)
                .runtime(runtime)
                .env(envs)
                .allowHosts(allow.isEmpty() ? null : allow)
                .build();
        try {
            service.create(spec);
        } catch (SandboxException e) {
            String message = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
            if (message.contains("unknown image") || message.contains("no such image")) {
                throw E2bException.notFound("template '" + template + "' not found: " + e.getMessage()
                        + " (a template id names an Airlock image; list them with: airlock image ls)");
            }
            throw E2bException.of(e);
        }
        // From here on the sandbox exists: any failure removes it, so nothing is left half made.
        try {
            service.start(id);
            GuestChannel ch = sandboxes.session(id).channel();
            GuestFiles.run(
                    ch,
                    E2bUser.ROOT,
                    List.of(
                            "sh",
                            "-c",
                            "mkdir -p /home/user && chown " + E2bUser.USER_UID + ":" + E2bUser.USER_UID
                                    + " /home/user"),
                    "preparing /home/user");
            Instant now = sandboxes.now();
            byte[] token = new byte[24];
            RANDOM.nextBytes(token);
            E2bSandbox record = new E2bSandbox(
                    id, template, metadata, envs, HexFormat.of().formatHex(token), now, now.plusSeconds(timeout));
            sandboxes.put(record);
            return sandbox(record);
        } catch (IOException | RuntimeException e) {
            sandboxes.dropSession(id);
            try {
                service.remove(id, true);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    private static List<String> allowedHosts(JsonNode body) {
        List<String> allow = new ArrayList<>();
        JsonNode network = body.get("network");
        if (network != null && network.isObject()) {
            JsonNode out = network.get("allowOut");
            if (out != null && out.isArray()) {
                for (JsonNode h : out) {
                    if (!h.isString()) {
                        throw E2bException.badRequest("network.allowOut must be a list of host names");
                    }
                    allow.add(h.stringValue());
                }
            }
        }
        JsonNode internet = body.get("allow_internet_access");
        if (internet != null && internet.isBoolean() && internet.booleanValue() && allow.isEmpty()) {
            allow.add("*");
        }
        return allow;
    }

    private static ObjectNode sandbox(E2bSandbox s) {
        ObjectNode o = ConnectRpc.object();
        o.put("templateID", s.templateId());
        o.put("sandboxID", s.sandboxId());
        o.put("alias", s.templateId());
        o.put("clientID", "airlock");
        o.put("envdVersion", ENVD_VERSION);
        o.put("envdAccessToken", s.accessToken());
        o.putNull("domain");
        return o;
    }

    private static ObjectNode detail(E2bSandbox s, SandboxInfo info) {
        ObjectNode o = sandbox(s);
        o.put("startedAt", DateTimeFormatter.ISO_INSTANT.format(s.startedAt()));
        o.put("endAt", DateTimeFormatter.ISO_INSTANT.format(s.endAt()));
        o.put("cpuCount", info.resources().cpus());
        o.put("memoryMB", info.resources().memoryMiB());
        o.put("diskSizeMB", info.resources().diskMiB());
        ObjectNode metadata = o.putObject("metadata");
        s.metadata().forEach(metadata::put);
        o.put("state", info.state() == SandboxState.PAUSED ? "paused" : "running");
        return o;
    }

    private List<ObjectNode> list(Exchange ex, boolean v2) {
        Map<String, String> wanted = metadataFilter(ex.query("metadata"));
        List<String> states = new ArrayList<>();
        for (String v : ex.queryValues("state")) {
            for (String part : v.split(",")) {
                if (!part.isBlank()) {
                    states.add(part.strip());
                }
            }
        }
        if (states.isEmpty()) {
            states = v2 ? List.of("running", "paused") : List.of("running");
        }
        Map<String, SandboxInfo> infos = new LinkedHashMap<>();
        for (SandboxInfo i : service.list()) {
            infos.put(i.name(), i);
        }
        List<ObjectNode> out = new ArrayList<>();
        for (E2bSandbox s : sandboxes.all()) {
            SandboxInfo info = infos.get(s.sandboxId());
            if (info == null) {
                continue; // removed behind our back (airlock rm): the reaper forgets it
            }
            ObjectNode d = detail(s, info);
            if (!states.contains(d.get("state").stringValue())) {
                continue;
            }
            if (!wanted.entrySet().stream()
                    .allMatch(w -> w.getValue().equals(s.metadata().get(w.getKey())))) {
                continue;
            }
            d.remove("envdAccessToken");
            out.add(d);
        }
        return out;
    }

    /** The {@code metadata} query: {@code key=value&key2=value2}, URL-encoded once more as a whole. */
    private static Map<String, String> metadataFilter(@Nullable String query) {
        Map<String, String> wanted = new LinkedHashMap<>();
        if (query == null || query.isBlank()) {
            return wanted;
        }
        for (String pair : query.split("&")) {
            int eq = pair.indexOf('=');
            if (eq <= 0) {
                throw E2bException.badRequest("metadata filter '" + pair + "' is not key=value");
            }
            wanted.put(
                    URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                    URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return wanted;
    }

    static Duration defaultTimeout() {
        return Duration.ofSeconds(DEFAULT_TIMEOUT);
    }
}
