package dev.airlock.service;

import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * A command whose output is collected whole (at most {@link ExecResult#MAX_OUTPUT} per stream):
 * the buffered exec of the HTTP API and of tools. Streams, terminals and signals go through
 * {@link SandboxService#session}.
 *
 * @param cmd the program and its arguments; null or empty for the sandbox's command (its image's
 *     entrypoint and cmd)
 * @param env variables added to the sandbox's own for this command
 * @param cwd working directory; null for the sandbox's
 * @param user a user name, uid or uid:gid; null for root
 * @param timeoutMs kill the command after this long
 * @param stdin text fed to the command's stdin; null for none
 */
public record ExecRequest(
        List<String> cmd,
        @Nullable Map<String, String> env,
        @Nullable String cwd,
        @Nullable String user,
        @Nullable Long timeoutMs,
        @Nullable String stdin) {}
