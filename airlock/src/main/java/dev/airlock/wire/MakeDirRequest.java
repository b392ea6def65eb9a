package dev.airlock.wire;

import org.jspecify.annotations.Nullable;

/** {@code POST .../files/mkdir}: a directory, and whether missing parents are made too ({@code mkdir -p}). */
public record MakeDirRequest(String path, @Nullable Boolean parents) {}
