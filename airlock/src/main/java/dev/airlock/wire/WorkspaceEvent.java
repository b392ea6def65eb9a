package dev.airlock.wire;

import dev.airlock.service.SandboxInfo;
import org.jspecify.annotations.Nullable;

/**
 * One line of the answer to {@code POST /v1/workspaces}, a stream of JSON lines while the
 * workspace is made: {@code step} (a message), {@code output} (bytes the setup commands printed,
 * base64), then exactly one {@code done} (the sandbox) or {@code error}.
 */
public record WorkspaceEvent(
        String type,
        @Nullable String message,
        @Nullable String data,
        @Nullable SandboxInfo sandbox,
        @Nullable ApiError error) {

    public static WorkspaceEvent step(String message) {
        return new WorkspaceEvent("step", message, null, null, null);
    }

    public static WorkspaceEvent output(String base64) {
        return new WorkspaceEvent("output", null, base64, null, null);
    }

    public static WorkspaceEvent done(SandboxInfo sandbox) {
        return new WorkspaceEvent("done", null, null, sandbox, null);
    }

    public static WorkspaceEvent failed(ApiError error) {
        return new WorkspaceEvent("error", null, null, null, error);
    }
}
