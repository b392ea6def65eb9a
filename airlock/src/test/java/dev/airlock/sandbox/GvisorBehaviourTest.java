package dev.airlock.sandbox;

/** The same behavioural suite under gVisor: the agent and protocol as in a container, the Sentry as the kernel. */
class GvisorBehaviourTest extends SandboxBehaviourTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
