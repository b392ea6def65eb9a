package dev.airlock.guest;

import java.io.IOException;
import java.util.Map;

/** The agent refused or failed an operation and said why with an errno value and a message. */
public sealed class GuestException extends IOException permits CommandNotFoundException, CommandNotExecutableException {
    private static final long serialVersionUID = 1L;

    public static final int ENOENT = 2;
    public static final int E2BIG = 7;
    public static final int EACCES = 13;
    public static final int EMFILE = 24;
    public static final int EPROTO = 71;
    public static final int ECANCELED = 125;

    // Only the values the agent is likely to send; others print as numbers.
    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(1, "EPERM"),
            Map.entry(ENOENT, "ENOENT"),
            Map.entry(5, "EIO"),
            Map.entry(E2BIG, "E2BIG"),
            Map.entry(9, "EBADF"),
            Map.entry(12, "ENOMEM"),
            Map.entry(EACCES, "EACCES"),
            Map.entry(17, "EEXIST"),
            Map.entry(20, "ENOTDIR"),
            Map.entry(21, "EISDIR"),
            Map.entry(22, "EINVAL"),
            Map.entry(EMFILE, "EMFILE"),
            Map.entry(28, "ENOSPC"),
            Map.entry(30, "EROFS"),
            Map.entry(36, "ENAMETOOLONG"),
            Map.entry(39, "ENOTEMPTY"),
            Map.entry(40, "ELOOP"),
            Map.entry(EPROTO, "EPROTO"),
            Map.entry(95, "EOPNOTSUPP"),
            Map.entry(110, "ETIMEDOUT"),
            Map.entry(ECANCELED, "ECANCELED"));

    private final int errno;
    private final String agentMessage;

    public GuestException(int errno, String agentMessage) {
        super(errnoName(errno) + ": " + agentMessage);
        this.errno = errno;
        this.agentMessage = agentMessage;
    }

    /** The Linux errno value the agent reported. */
    public int errno() {
        return errno;
    }

    /** The agent's own text, without the errno prefix. */
    public String agentMessage() {
        return agentMessage;
    }

    public static String errnoName(int errno) {
        String name = NAMES.get(errno);
        return name != null ? name : "errno " + Integer.toUnsignedString(errno);
    }

    /** Decodes an ERROR payload ({@code u32 code, UTF-8 message}); the reader checked its length. */
    static GuestException fromPayload(byte[] payload) {
        int errno = java.nio.ByteBuffer.wrap(payload).getInt();
        String message = new String(payload, 4, payload.length - 4, java.nio.charset.StandardCharsets.UTF_8);
        return new GuestException(errno, message);
    }
}
