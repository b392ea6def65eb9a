package dev.airlock.ociruntime;

import dev.airlock.wire.Json;
import java.util.Locale;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/**
 * What {@code update --resources} asks for (runtime-spec {@code linux.resources}), reduced to
 * what a running VM can change: the memory limit and the process limit of its commands. Every
 * other field is refused by name rather than dropped.
 *
 * @param memory {@code memory.limit} in bytes (negative: no limit), or null to leave it
 * @param pids {@code pids.limit} (0 or negative: no limit), or null to leave it
 */
record ResourceUpdate(@Nullable Long memory, @Nullable Long pids) {

    static ResourceUpdate parse(String json) {
        JsonNode r;
        try {
            r = Json.MAPPER.readTree(json);
        } catch (JacksonException e) {
            throw new RuntimeError("the resources are not valid JSON: " + e.getOriginalMessage());
        }
        if (!r.isObject()) {
            throw new RuntimeError("the resources must be a JSON object (runtime-spec linux.resources)");
        }
        Long memory = null;
        Long pids = null;
        for (Map.Entry<String, JsonNode> e : r.properties()) {
            JsonNode v = e.getValue();
            if (v.isNull() || (v.isContainer() && v.isEmpty())) {
                continue;
            }
            switch (e.getKey()) {
                case "memory" -> {
                    for (Map.Entry<String, JsonNode> m : v.properties()) {
                        if (m.getKey().equals("limit")) {
                            memory = m.getValue().asLong();
                        } else if (!m.getValue().isNull()) {
                            throw refused("memory." + m.getKey());
                        }
                    }
                }
                case "pids" -> {
                    for (Map.Entry<String, JsonNode> p : v.properties()) {
                        if (p.getKey().equals("limit")) {
                            pids = p.getValue().asLong();
                        } else if (!p.getValue().isNull()) {
                            throw refused("pids." + p.getKey());
                        }
                    }
                }
                default -> throw refused(e.getKey());
            }
        }
        return new ResourceUpdate(memory, pids);
    }

    private static RuntimeError refused(String field) {
        return new RuntimeError("update: resources." + field + " cannot be changed while the container runs:"
                + " a VM's vCPUs, devices and other limits are set when it boots; only memory.limit (up to the"
                + " VM's RAM) and pids.limit change live");
    }

    /** runc's {@code --memory} forms: bytes, or a number with k, m, g (binary units). */
    static long bytes(String value) {
        String v = value.strip().toLowerCase(Locale.ROOT);
        long unit = 1;
        if (v.endsWith("b")) {
            v = v.substring(0, v.length() - 1);
        }
        if (!v.isEmpty() && "kmg".indexOf(v.charAt(v.length() - 1)) >= 0) {
            unit = 1L << (10 * ("kmg".indexOf(v.charAt(v.length() - 1)) + 1));
            v = v.substring(0, v.length() - 1);
        }
        return Math.multiplyExact(number("--memory", v), unit);
    }

    static long number(String flag, String value) {
        try {
            return Long.parseLong(value.strip());
        } catch (NumberFormatException e) {
            throw new RuntimeError(flag + " " + value + ": not a number");
        }
    }
}
