package dev.airlock.cli;

import java.io.PrintStream;
import java.util.List;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/** Results go to stdout (tables for people, JSON with --json); everything else to stderr. */
final class Output {
    private Output() {}

    /** Built on first use: a table must not pay for a data-binding mapper. */
    private static final class Mapper {
        static final JsonMapper JSON =
                JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    }

    static void json(Object value) {
        System.out.println(Mapper.JSON.writeValueAsString(value));
    }

    /** A left-aligned table, columns as wide as their widest cell, like {@code docker ps}. */
    static void table(PrintStream out, List<String> header, List<List<String>> rows) {
        int[] w = new int[header.size()];
        for (int i = 0; i < w.length; i++) {
            w[i] = header.get(i).length();
            for (List<String> r : rows) {
                w[i] = Math.max(w[i], r.get(i).length());
            }
        }
        printRow(out, header, w);
        for (List<String> r : rows) {
            printRow(out, r, w);
        }
    }

    private static void printRow(PrintStream out, List<String> cells, int[] w) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < cells.size(); i++) {
            String c = cells.get(i);
            sb.append(c);
            if (i < cells.size() - 1) {
                sb.append(" ".repeat(w[i] - c.length() + 3));
            }
        }
        out.println(sb.toString().stripTrailing());
    }
}
