package dev.airlock.guest;

import org.jspecify.annotations.Nullable;

/**
 * Every frame type of protocol version 1. Types that exist in both directions with the same name
 * in the spec (HELLO, CREDIT) get an {@code AGENT_} prefix for the agent's variant so that one
 * wire code maps to exactly one constant.
 */
public enum FrameType {
    HELLO(0x01, Direction.TO_AGENT, Scope.SESSION, 4, Frame.MAX_PAYLOAD),
    PING(0x02, Direction.TO_AGENT, Scope.SESSION, 0, 64),
    EXEC(0x10, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    STDIN(0x11, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    SIGNAL(0x12, Direction.TO_AGENT, Scope.STREAM, 4, Frame.MAX_PAYLOAD),
    RESIZE(0x13, Direction.TO_AGENT, Scope.STREAM, 4, Frame.MAX_PAYLOAD),
    CREDIT(0x14, Direction.TO_AGENT, Scope.STREAM, 4, Frame.MAX_PAYLOAD),
    FILE_READ(0x20, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    FILE_WRITE(0x21, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    FILE_DATA(0x22, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    STAT(0x23, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    LIST(0x24, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    SET_ENV(0x25, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    MKDIR(0x26, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    MOVE(0x27, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    REMOVE(0x28, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    SHUTDOWN(0x30, Direction.TO_AGENT, Scope.SESSION, 1, Frame.MAX_PAYLOAD),
    IDENTITY(0x31, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    ACCEPT(0x40, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    CONNECT(0x41, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    SOCK_DATA(0x42, Direction.TO_AGENT, Scope.STREAM, 0, Frame.MAX_PAYLOAD),

    AGENT_HELLO(0x81, Direction.TO_HOST, Scope.SESSION, 8, Frame.MAX_PAYLOAD),
    PONG(0x82, Direction.TO_HOST, Scope.SESSION, 0, 64),
    STARTED(0x83, Direction.TO_HOST, Scope.STREAM, 4, Frame.MAX_PAYLOAD),
    STDOUT(0x84, Direction.TO_HOST, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    STDERR(0x85, Direction.TO_HOST, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    EXIT(0x86, Direction.TO_HOST, Scope.STREAM, 9, Frame.MAX_PAYLOAD),
    AGENT_CREDIT(0x87, Direction.TO_HOST, Scope.STREAM, 4, Frame.MAX_PAYLOAD),
    CONNECTED(0x88, Direction.TO_HOST, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    RESULT(0x90, Direction.TO_HOST, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    DATA(0x91, Direction.TO_HOST, Scope.STREAM, 0, Frame.MAX_PAYLOAD),
    END(0x9F, Direction.TO_HOST, Scope.STREAM, 8, Frame.MAX_PAYLOAD),

    ERROR(0xE0, Direction.BOTH, Scope.ANY, 4, Frame.MAX_PAYLOAD);

    /** Who may send a frame type. */
    public enum Direction {
        TO_AGENT("host → agent"),
        TO_HOST("agent → host"),
        BOTH("either way");

        private final String label;

        Direction(String label) {
            this.label = label;
        }

        boolean allows(Direction travelling) {
            return this == BOTH || this == travelling;
        }

        @Override
        public String toString() {
            return label;
        }
    }

    /** Which stream ids a frame type may carry. */
    enum Scope {
        /** Only stream 0. */
        SESSION,
        /** Only a non-zero stream. */
        STREAM,
        ANY
    }

    private static final @Nullable FrameType[] BY_CODE = new FrameType[256];

    static {
        for (FrameType type : values()) {
            BY_CODE[type.code] = type;
        }
    }

    private final int code;
    private final Direction direction;
    private final Scope scope;
    private final int minPayload;
    private final int maxPayload;

    FrameType(int code, Direction direction, Scope scope, int minPayload, int maxPayload) {
        this.code = code;
        this.direction = direction;
        this.scope = scope;
        this.minPayload = minPayload;
        this.maxPayload = maxPayload;
    }

    /** The type's byte on the wire. */
    public int code() {
        return code;
    }

    public Direction direction() {
        return direction;
    }

    Scope scope() {
        return scope;
    }

    /** Shortest payload the type is meaningful with; longer payloads leave room for later versions. */
    int minPayload() {
        return minPayload;
    }

    int maxPayload() {
        return maxPayload;
    }

    /** The type for a wire code, or null when version 1 does not define it. */
    public static @Nullable FrameType fromCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** Name and code, as used in error messages: {@code EXEC (0x10)}. */
    String describe() {
        return String.format("%s (0x%02X)", name(), code);
    }
}
