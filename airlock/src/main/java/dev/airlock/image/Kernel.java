package dev.airlock.image;

import java.nio.file.Path;

/** A built guest kernel: the ELF (PVH entry) that VMMs boot, and the bzImage kept beside it. */
public record Kernel(String key, String version, Path vmlinux, Path bzImage, long buildSeconds) {}
