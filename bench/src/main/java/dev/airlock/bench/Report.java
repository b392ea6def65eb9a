package dev.airlock.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The figures of one benchmark run: printed as a table and written as JSON. A figure may name
 * another figure of the same run as its baseline; its ratio is then median / baseline median.
 */
final class Report {
    private static final JsonMapper JSON =
            JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    /** One measured quantity and all its kept samples (warm-up runs are never added). */
    record Figure(
            String key,
            String label,
            String unit,
            List<Double> samples,
            Stats stats,
            @Nullable String baseline) {}

    private final String benchmark;
    private final Instant started = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    private final Map<String, Object> config = new LinkedHashMap<>();
    private final Map<String, Object> host = new LinkedHashMap<>();
    private final Map<String, Figure> figures = new LinkedHashMap<>();
    private final List<String> notes = new ArrayList<>();
    private final Map<String, Object> extra = new LinkedHashMap<>();

    Report(String benchmark) {
        this.benchmark = benchmark;
    }

    Report config(Map<String, ?> values) {
        config.putAll(values);
        return this;
    }

    Report config(String key, Object value) {
        config.put(key, value);
        return this;
    }

    Report host(Map<String, ?> values) {
        host.putAll(values);
        return this;
    }

    /** Free-form structured data (e.g. a kernel boot trace) kept in the JSON only. */
    Report extra(String key, Object value) {
        extra.put(key, value);
        return this;
    }

    Report note(String text) {
        notes.add(text);
        return this;
    }

    /** Whether a figure with that key was added. */
    boolean has(String key) {
        return figures.containsKey(key);
    }

    Figure add(String key, String label, String unit, List<Double> samples, @Nullable String baseline) {
        if (baseline != null && !figures.containsKey(baseline)) {
            throw new IllegalArgumentException("baseline " + baseline + " must be added before " + key);
        }
        Figure f = new Figure(key, label, unit, List.copyOf(samples), Stats.of(samples), baseline);
        figures.put(key, f);
        return f;
    }

    @Nullable
    Double ratio(Figure f) {
        if (f.baseline() == null) {
            return null;
        }
        Figure b = figures.get(f.baseline());
        return b == null || b.stats().median() == 0
                ? null
                : f.stats().median() / b.stats().median();
    }

    void print(PrintStream out) {
        out.println();
        out.println("== " + benchmark + " (" + started + ") ==");
        host.forEach((k, v) -> out.println("  " + k + ": " + v));
        out.println("  config: " + config);
        out.println();
        String head = String.format(
                "%-46s %-5s %4s %10s %10s %10s %10s  %-22s %10s %7s",
                "figure", "unit", "n", "median", "p95", "min", "max", "baseline", "base med", "ratio");
        out.println(head);
        out.println("-".repeat(head.length()));
        for (Figure f : figures.values()) {
            Stats s = f.stats();
            Double r = ratio(f);
            String base = f.baseline() == null ? "" : f.baseline();
            Figure b = f.baseline() == null ? null : figures.get(f.baseline());
            String baseMedian = b == null ? "" : num(b.stats().median());
            out.println(String.format(
                    "%-46s %-5s %4d %10s %10s %10s %10s  %-22s %10s %7s",
                    f.label(),
                    f.unit(),
                    s.n(),
                    num(s.median()),
                    num(s.p95()),
                    num(s.min()),
                    num(s.max()),
                    base,
                    baseMedian,
                    r == null ? "" : String.format(Locale.ROOT, "%.2fx", r)));
        }
        out.println();
        out.println("figure keys: ");
        figures.values().forEach(f -> out.println("  " + f.key() + " = " + f.label()));
        if (!notes.isEmpty()) {
            out.println();
            notes.forEach(n -> out.println("note: " + n));
        }
    }

    static String num(double v) {
        double a = Math.abs(v);
        return String.format(Locale.ROOT, a >= 1000 ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f", v);
    }

    /** Writes {@code <dir>/<benchmark>-<UTC date and time>.json} and returns its path. */
    Path write(Path dir) {
        String stamp = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HHmmss'Z'")
                .withZone(ZoneOffset.UTC)
                .format(started);
        Path file = dir.resolve(benchmark + "-" + stamp + ".json");
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("benchmark", benchmark);
        root.put("started", started.toString());
        root.put("finished", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        root.put("host", host);
        root.put("config", config);
        List<Map<String, Object>> figs = new ArrayList<>();
        for (Figure f : figures.values()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("key", f.key());
            m.put("label", f.label());
            m.put("unit", f.unit());
            m.put("n", f.stats().n());
            m.put("median", round(f.stats().median()));
            m.put("p95", round(f.stats().p95()));
            m.put("min", round(f.stats().min()));
            m.put("max", round(f.stats().max()));
            m.put("mean", round(f.stats().mean()));
            m.put("baseline", f.baseline());
            Double r = ratio(f);
            m.put("ratio", r == null ? null : round(r));
            m.put("samples", f.samples().stream().map(Report::round).toList());
            figs.add(m);
        }
        root.put("figures", figs);
        root.put("notes", notes);
        root.putAll(extra);
        try {
            Files.createDirectories(dir);
            Files.writeString(file, JSON.writeValueAsString(root) + "\n");
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
