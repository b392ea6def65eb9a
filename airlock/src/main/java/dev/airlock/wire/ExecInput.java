package dev.airlock.wire;

import org.jspecify.annotations.Nullable;

/**
 * One message from the client of a streamed exec (a JSON line after the first, or a WebSocket
 * text message); each field present is acted on, in this order.
 *
 * @param stdin bytes for the command's stdin, base64
 * @param eof close the command's stdin
 * @param signal a signal for the command's process group: a name ({@code TERM}, {@code SIGINT})
 *     or a number
 * @param resize the terminal's new size (tty only)
 */
public record ExecInput(
        @Nullable String stdin,
        @Nullable Boolean eof,
        @Nullable String signal,
        @Nullable TtySize resize) {}
