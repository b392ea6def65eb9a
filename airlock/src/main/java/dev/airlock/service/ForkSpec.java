package dev.airlock.service;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * How many clones a fork makes and their names: {@code count} clones named SOURCE-1 ...
 * SOURCE-count, or one per name given (then count may be left out).
 */
public record ForkSpec(@Nullable Integer count, @Nullable List<String> names) {}
