package dev.airlock.mcp;

import dev.airlock.sandbox.SandboxException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The arguments of one tool call, read by name with the type the tool's schema promises. A
 * model may send anything: a missing or mistyped argument is a {@link SandboxException} whose
 * message names the argument and what it should be, which the tool returns as its error.
 */
final class ToolArguments {
    private final Map<String, Object> values;

    ToolArguments(@Nullable Map<String, Object> values) {
        this.values = values == null ? Map.of() : values;
    }

    String string(String name) {
        String value = optionalString(name);
        if (value == null || value.isEmpty()) {
            throw new SandboxException("argument '" + name + "' is required: a non-empty string");
        }
        return value;
    }

    @Nullable
    String optionalString(String name) {
        Object v = values.get(name);
        if (v == null) {
            return null;
        }
        if (v instanceof String s) {
            return s;
        }
        throw new SandboxException("argument '" + name + "' must be a string, not " + describe(v));
    }

    @Nullable
    Long optionalLong(String name, long min, long max) {
        Object v = values.get(name);
        if (v == null) {
            return null;
        }
        long n;
        if (v instanceof Number num && num.doubleValue() == Math.rint(num.doubleValue())) {
            n = num.longValue();
        } else if (v instanceof String s && s.matches("-?\\d{1,18}")) {
            n = Long.parseLong(s);
        } else {
            throw new SandboxException("argument '" + name + "' must be a whole number, not " + describe(v));
        }
        if (n < min || n > max) {
            throw new SandboxException("argument '" + name + "' must be between " + min + " and " + max + ", not " + n);
        }
        return n;
    }

    long longOr(String name, long min, long max, long fallback) {
        Long n = optionalLong(name, min, max);
        return n == null ? fallback : n;
    }

    boolean bool(String name, boolean fallback) {
        Object v = values.get(name);
        if (v == null) {
            return fallback;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw new SandboxException("argument '" + name + "' must be true or false, not " + describe(v));
    }

    /** A list of strings; a single string is taken as a list of one (models often send that). */
    @Nullable
    List<String> optionalStrings(String name) {
        Object v = values.get(name);
        if (v == null) {
            return null;
        }
        if (v instanceof String s) {
            return List.of(s);
        }
        if (v instanceof List<?> list) {
            List<String> out = new ArrayList<>();
            for (Object item : list) {
                if (!(item instanceof String s)) {
                    throw new SandboxException(
                            "argument '" + name + "' must be a list of strings; it holds " + describe(item));
                }
                out.add(s);
            }
            return out;
        }
        throw new SandboxException("argument '" + name + "' must be a list of strings, not " + describe(v));
    }

    @Nullable
    Map<String, String> optionalStringMap(String name) {
        Object v = values.get(name);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Map<?, ?> map)) {
            throw new SandboxException(
                    "argument '" + name + "' must be an object of string values, not " + describe(v));
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw new SandboxException("argument '" + name + "' must map names to strings; '" + e.getKey() + "' is "
                        + describe(e.getValue()));
            }
            out.put(String.valueOf(e.getKey()), s);
        }
        return out;
    }

    private static String describe(@Nullable Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof String) {
            return "a string";
        }
        if (v instanceof Number) {
            return "the number " + v;
        }
        if (v instanceof Boolean) {
            return "a boolean";
        }
        if (v instanceof List) {
            return "a list";
        }
        if (v instanceof Map) {
            return "an object";
        }
        return v.getClass().getSimpleName();
    }
}
