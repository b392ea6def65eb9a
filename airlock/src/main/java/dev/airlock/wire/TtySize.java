package dev.airlock.wire;

import dev.airlock.sandbox.SandboxException;
import org.jspecify.annotations.Nullable;

/** A terminal's size in characters. */
public record TtySize(int rows, int cols) {
    public TtySize {
        if (rows < 1 || rows > 10_000 || cols < 1 || cols > 10_000) {
            throw new SandboxException(
                    "impossible terminal size " + rows + "x" + cols + ": rows and cols are 1 to 10000");
        }
    }

    /** {@code ROWSxCOLS}, as query parameters give it; null stays null. */
    public static @Nullable TtySize parse(@Nullable String text) {
        if (text == null) {
            return null;
        }
        String[] parts = text.split("x", -1);
        try {
            if (parts.length == 2) {
                return new TtySize(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
            }
        } catch (NumberFormatException e) {
            // said below
        }
        throw new SandboxException("tty='" + text + "' is not ROWSxCOLS, e.g. 24x80");
    }
}
