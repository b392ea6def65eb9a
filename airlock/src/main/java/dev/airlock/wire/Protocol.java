package dev.airlock.wire;

/** Names shared by the daemon and its clients beyond the JSON bodies. */
public final class Protocol {
    private Protocol() {}

    /**
     * Sent by a client with every request: the build of Airlock it runs. A daemon of another
     * build answers {@code 409} with kind {@link #STALE_DAEMON}, and the client replaces it
     * (sandboxes keep running) and asks again.
     */
    public static final String BUILD_HEADER = "Airlock-Build";

    public static final String STALE_DAEMON = "STALE_DAEMON";

    /**
     * The body of {@code POST /v1/sandboxes/{ref}/session}, both ways: the guest protocol's
     * frames (docs/guest-protocol.md). The answer starts with one JSON line (the sandbox), then
     * the frames.
     */
    public static final String GUEST_FRAMES = "application/vnd.airlock.guest-frames";

    /** The answer of {@code POST /v1/workspaces}: {@link WorkspaceEvent}s, one JSON object per line. */
    public static final String JSON_LINES = "application/jsonl";

    /** Server-sent events ({@code GET /v1/events}). */
    public static final String EVENT_STREAM = "text/event-stream";

    /** The scheme of the bearer token a TCP listener asks for in {@code Authorization}. */
    public static final String BEARER = "Bearer";
}
