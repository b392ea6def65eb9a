package dev.airlock.bench;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** {@code --name value} flags with declared defaults; anything else is an error that prints usage. */
final class Args {
    private final String usage;
    private final Map<String, String> defaults = new LinkedHashMap<>();
    private final Map<String, String> help = new LinkedHashMap<>();
    private final Map<String, String> given = new LinkedHashMap<>();

    Args(String usage) {
        this.usage = usage;
    }

    Args flag(String name, Object defaultValue, String description) {
        defaults.put(name, String.valueOf(defaultValue));
        help.put(name, description);
        return this;
    }

    /** Parses argv; prints usage and exits on --help or a bad flag. */
    Args parse(String[] argv) {
        List<String> a = List.of(argv);
        for (int i = 0; i < a.size(); i++) {
            String arg = a.get(i);
            if (arg.equals("-h") || arg.equals("--help")) {
                System.out.println(usageText());
                System.exit(0);
            }
            String name = arg.startsWith("--") ? arg.substring(2) : "";
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (!defaults.containsKey(name)) {
                fail("unknown argument '" + arg + "'");
            }
            if (value == null) {
                if (i + 1 >= a.size()) {
                    fail("--" + name + " needs a value");
                }
                value = a.get(++i);
            }
            given.put(name, value);
        }
        return this;
    }

    int integer(String name, int min) {
        String v = string(name);
        try {
            int n = Integer.parseInt(v);
            if (n < min) {
                fail("--" + name + " must be at least " + min + ", not " + n);
            }
            return n;
        } catch (NumberFormatException e) {
            fail("--" + name + " takes a whole number, not '" + v + "'");
            return min;
        }
    }

    String string(String name) {
        String v = given.getOrDefault(name, defaults.get(name));
        if (v == null) {
            throw new IllegalStateException("undeclared flag --" + name);
        }
        return v;
    }

    @Nullable
    Path path(String name) {
        String v = string(name);
        return v.isEmpty() ? null : Path.of(v);
    }

    /** Every flag's effective value, for the result file. */
    Map<String, String> effective() {
        Map<String, String> out = new LinkedHashMap<>();
        defaults.keySet().forEach(k -> out.put(k, string(k)));
        return out;
    }

    private void fail(String why) {
        System.err.println("error: " + why + "\n" + usageText());
        System.exit(2);
    }

    private String usageText() {
        StringBuilder sb = new StringBuilder("usage: " + usage + "\n");
        help.forEach((name, text) -> {
            String d = defaults.getOrDefault(name, "");
            sb.append(String.format("  --%-16s %s (default: %s)%n", name + " V", text, d.isEmpty() ? "none" : d));
        });
        return sb.toString();
    }
}
