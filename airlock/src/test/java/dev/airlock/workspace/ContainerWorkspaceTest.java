package dev.airlock.workspace;

/** The same workspace round trip in container sandboxes. */
class ContainerWorkspaceTest extends WorkspaceTest {
    @Override
    String runtime() {
        return "container";
    }
}
