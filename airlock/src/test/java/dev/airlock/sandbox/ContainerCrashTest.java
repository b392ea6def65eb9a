package dev.airlock.sandbox;

/** Killing a container sandbox's init. */
class ContainerCrashTest extends SandboxCrashTest {
    @Override
    String runtime() {
        return "container";
    }
}
