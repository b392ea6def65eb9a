package dev.airlock.wire;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.airlock.guest.ExitStatus;
import org.jspecify.annotations.Nullable;

/**
 * One line of a streamed exec's answer (or a WebSocket text message): {@code started} (the pid),
 * {@code stdout} / {@code stderr} (bytes, base64; WebSockets send output as binary messages
 * instead), then exactly one {@code exit} or {@code error}.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ExecEvent(
        String type,
        @Nullable Integer pid,
        @Nullable String data,
        @Nullable Integer exitCode,
        @Nullable Integer signal,
        @Nullable Boolean timedOut,
        @Nullable Boolean oomKilled,
        @Nullable ApiError error) {

    public static ExecEvent started(int pid) {
        return new ExecEvent("started", pid, null, null, null, null, null, null);
    }

    public static ExecEvent output(String stream, String base64) {
        return new ExecEvent(stream, null, base64, null, null, null, null, null);
    }

    public static ExecEvent exit(ExitStatus st) {
        return new ExecEvent("exit", null, null, st.exitCode(), st.signal(), st.timedOut(), st.oomKilled(), null);
    }

    public static ExecEvent failed(ApiError error) {
        return new ExecEvent("error", null, null, null, null, null, null, error);
    }
}
