package dev.airlock.bench;

import java.util.Arrays;
import java.util.List;

/**
 * Order statistics of one figure's samples. Quantiles interpolate linearly between the two
 * closest ranks (Hyndman and Fan's type 7, the default of R and numpy), so the p95 of a small
 * sample lies between its two largest values rather than being the maximum.
 */
public record Stats(int n, double median, double p95, double min, double max, double mean) {

    public static Stats of(List<? extends Number> samples) {
        if (samples.isEmpty()) {
            throw new IllegalArgumentException("no samples");
        }
        double[] sorted =
                samples.stream().mapToDouble(Number::doubleValue).sorted().toArray();
        return new Stats(
                sorted.length,
                quantile(sorted, 0.5),
                quantile(sorted, 0.95),
                sorted[0],
                sorted[sorted.length - 1],
                Arrays.stream(sorted).average().orElseThrow());
    }

    /** The {@code q}-quantile (0 to 1) of ascending {@code sorted}. */
    public static double quantile(double[] sorted, double q) {
        if (sorted.length == 0) {
            throw new IllegalArgumentException("no samples");
        }
        if (q < 0 || q > 1) {
            throw new IllegalArgumentException("quantile must be between 0 and 1, not " + q);
        }
        double rank = q * (sorted.length - 1);
        int lo = (int) Math.floor(rank);
        int hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (rank - lo) * (sorted[hi] - sorted[lo]);
    }
}
