package dev.airlock.sandbox;

/** The limits suite in an OCI container: memory and pids limits are the container's cgroup. */
class ContainerLimitsTest extends SandboxLimitsTest {
    @Override
    String runtime() {
        return "container";
    }
}
