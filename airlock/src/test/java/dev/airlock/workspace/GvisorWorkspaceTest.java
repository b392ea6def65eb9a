package dev.airlock.workspace;

/** The same workspace round trip in gVisor sandboxes (templates are the overlay's upper directory, as for containers). */
class GvisorWorkspaceTest extends WorkspaceTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
