package dev.airlock.client;

import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.SandboxInfo;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.core.JsonParser;
import tools.jackson.core.JsonToken;
import tools.jackson.core.ObjectReadContext;
import tools.jackson.core.json.JsonFactory;

/**
 * {@link SandboxInfo} from the API's JSON with Jackson's streaming parser alone. Building a data
 * binding mapper and introspecting the records costs a short CLI command ({@code ps}, {@code
 * exec}) more than everything else it does; the answers it reads on every call are only these.
 * Reads what {@code Json.MAPPER} writes (a test keeps the two in step); unknown fields are
 * skipped, as the mapper does, so an older client reads a newer daemon's answers.
 */
final class SandboxInfoJson {
    private static final JsonFactory FACTORY = new JsonFactory();

    private SandboxInfoJson() {}

    static SandboxInfo read(byte[] json) {
        try (JsonParser p = FACTORY.createParser(ObjectReadContext.empty(), json)) {
            return info(p, p.nextToken());
        } catch (JacksonException e) {
            throw unreadable(e);
        }
    }

    static SandboxInfo read(String json) {
        try (JsonParser p = FACTORY.createParser(ObjectReadContext.empty(), json)) {
            return info(p, p.nextToken());
        } catch (JacksonException e) {
            throw unreadable(e);
        }
    }

    static List<SandboxInfo> readList(byte[] json) {
        try (JsonParser p = FACTORY.createParser(ObjectReadContext.empty(), json)) {
            expect(p.nextToken(), JsonToken.START_ARRAY, "a list of sandboxes");
            List<SandboxInfo> out = new ArrayList<>();
            for (JsonToken t; (t = p.nextToken()) != JsonToken.END_ARRAY; ) {
                out.add(info(p, t));
            }
            return out;
        } catch (JacksonException e) {
            throw unreadable(e);
        }
    }

    private static SandboxException unreadable(JacksonException e) {
        return SandboxException.failed("the daemon's answer is not a sandbox's JSON: " + e.getOriginalMessage());
    }

    private static SandboxInfo info(JsonParser p, @Nullable JsonToken start) {
        expect(start, JsonToken.START_OBJECT, "a sandbox");
        Map<String, @Nullable Object> f = new LinkedHashMap<>();
        Resources resources = null;
        Map<String, String> env = Map.of();
        List<String> command = List.of();
        for (String name; (name = p.nextName()) != null; ) {
            JsonToken t = p.nextToken();
            switch (name) {
                case "resources" -> resources = resources(p, t);
                case "env" -> env = env(p, t);
                case "command" -> command = strings(p, t);
                case "pid" -> f.put(name, t == JsonToken.VALUE_NUMBER_INT ? p.getLongValue() : null);
                default -> {
                    if (t == JsonToken.VALUE_STRING) {
                        f.put(name, p.getString());
                    } else {
                        // null, or a newer daemon's field of a kind this client does not show
                        p.skipChildren();
                    }
                }
            }
        }
        if (resources == null) {
            throw missing("resources");
        }
        String state = required(f, "state");
        SandboxState s;
        try {
            s = SandboxState.valueOf(state);
        } catch (IllegalArgumentException e) {
            throw SandboxException.failed("the daemon reported an unknown sandbox state '" + state + "'");
        }
        Object pid = f.get("pid");
        return new SandboxInfo(
                required(f, "id"),
                required(f, "name"),
                required(f, "runtime"),
                required(f, "isolation"),
                required(f, "image"),
                required(f, "imageId"),
                required(f, "accel"),
                resources,
                env,
                (String) f.get("workdir"),
                s,
                pid instanceof Long l ? l : 0L,
                instant(required(f, "created")),
                f.get("started") instanceof String started ? instant(started) : null,
                (String) f.get("error"),
                required(f, "network"),
                required(f, "origin"),
                (String) f.get("workspace"),
                (String) f.get("user"),
                command);
    }

    private static Resources resources(JsonParser p, JsonToken start) {
        expect(start, JsonToken.START_OBJECT, "a sandbox's resources");
        int cpus = 0;
        int memory = 0;
        long disk = 0;
        int pids = 0;
        Duration timeout = null;
        for (String name; (name = p.nextName()) != null; ) {
            JsonToken t = p.nextToken();
            switch (name) {
                case "cpus" -> cpus = p.getIntValue();
                case "memoryMiB" -> memory = p.getIntValue();
                case "diskMiB" -> disk = p.getLongValue();
                case "pids" -> pids = p.getIntValue();
                case "timeout" -> timeout = t == JsonToken.VALUE_STRING ? duration(p.getString()) : null;
                default -> p.skipChildren();
            }
        }
        return new Resources(cpus, memory, disk, pids, timeout);
    }

    private static Map<String, String> env(JsonParser p, JsonToken start) {
        if (start == JsonToken.VALUE_NULL) {
            return Map.of();
        }
        expect(start, JsonToken.START_OBJECT, "a sandbox's environment");
        Map<String, String> env = new LinkedHashMap<>();
        for (String name; (name = p.nextName()) != null; ) {
            expect(p.nextToken(), JsonToken.VALUE_STRING, "an environment variable's value");
            env.put(name, p.getString());
        }
        return env;
    }

    private static List<String> strings(JsonParser p, JsonToken start) {
        if (start == JsonToken.VALUE_NULL) {
            return List.of();
        }
        expect(start, JsonToken.START_ARRAY, "a sandbox's command");
        List<String> out = new ArrayList<>();
        for (JsonToken t; (t = p.nextToken()) != JsonToken.END_ARRAY; ) {
            expect(t, JsonToken.VALUE_STRING, "an argument of a sandbox's command");
            out.add(p.getString());
        }
        return out;
    }

    private static void expect(@Nullable JsonToken t, JsonToken wanted, String what) {
        if (t != wanted) {
            throw SandboxException.failed("the daemon's answer has " + t + " where " + what + " belongs");
        }
    }

    private static String required(Map<String, @Nullable Object> fields, String name) {
        if (!(fields.get(name) instanceof String s)) {
            throw missing(name);
        }
        return s;
    }

    private static SandboxException missing(String name) {
        return SandboxException.failed("the daemon's answer lacks the sandbox's '" + name + "'");
    }

    private static Instant instant(String s) {
        try {
            return Instant.parse(s);
        } catch (DateTimeParseException e) {
            throw SandboxException.failed("the daemon's answer has a bad time '" + s + "'");
        }
    }

    private static Duration duration(String s) {
        try {
            return Duration.parse(s);
        } catch (DateTimeParseException e) {
            throw SandboxException.failed("the daemon's answer has a bad duration '" + s + "'");
        }
    }
}
