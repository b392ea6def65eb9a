package dev.airlock.wire;

import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The command of a streamed exec ({@code POST .../exec/stream} in JSON-lines form, its first
 * line; WebSocket exec and terminals take the same fields as query parameters).
 *
 * @param stdin whether the client sends stdin (default: yes in JSON-lines form)
 * @param tty run on a pseudo-terminal of this size (stdout and stderr are then one stream)
 */
public record ExecStart(
        List<String> cmd,
        @Nullable Map<String, String> env,
        @Nullable String cwd,
        @Nullable String user,
        @Nullable Long timeoutMs,
        @Nullable Boolean stdin,
        @Nullable TtySize tty) {}
