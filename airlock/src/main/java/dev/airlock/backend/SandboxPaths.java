package dev.airlock.backend;

import java.nio.file.Path;

/**
 * Where one sandbox lives on the host. The engine owns both directories and removes them; a
 * backend keeps whatever it needs inside them, so any process can find a sandbox another one
 * started (a crashed CLI's, a previous daemon's).
 *
 * @param dir the sandbox's data directory: its record, writable layer, logs; kept across restarts
 * @param runtimeDir its sockets (agent, VMM control): short paths, since a unix socket path is
 *     limited to 107 bytes and data directories can be deeper than that
 */
public record SandboxPaths(Path dir, Path runtimeDir) {}
