package dev.airlock.guest;

/** A pseudo-terminal's size in character cells. */
public record TerminalSize(int rows, int cols) {
    public TerminalSize {
        if (rows < 1 || rows > 0xFFFF || cols < 1 || cols > 0xFFFF) {
            throw new IllegalArgumentException("terminal size out of range: " + rows + "x" + cols);
        }
    }

    byte[] toPayload() {
        return java.nio.ByteBuffer.allocate(4)
                .putShort((short) rows)
                .putShort((short) cols)
                .array();
    }
}
