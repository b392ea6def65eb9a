package dev.airlock.workspace;

/** The workspace round trip in microVM sandboxes. */
class MicrovmWorkspaceTest extends WorkspaceTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
