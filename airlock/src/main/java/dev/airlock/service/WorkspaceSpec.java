package dev.airlock.service;

/**
 * A sandbox with a copy of a host git repository in {@code /workspace}: the repository's
 * {@code airlock.toml} gives defaults for what {@code sandbox} leaves out, its setup commands
 * run once per distinct lockfile content (then the result is reused), and its work comes back
 * with {@link SandboxService#pull}.
 *
 * @param repo a directory inside the host repository
 * @param uncommitted bring its uncommitted and untracked (not ignored) files too
 * @param start leave the sandbox running ({@code run}); false stops it once the repository is in
 *     ({@code create})
 */
public record WorkspaceSpec(String repo, boolean uncommitted, CreateSpec sandbox, boolean start) {}
