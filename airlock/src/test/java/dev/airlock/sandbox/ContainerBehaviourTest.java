package dev.airlock.sandbox;

/** The same behavioural suite in an OCI container (crun): only the isolation boundary differs. */
class ContainerBehaviourTest extends SandboxBehaviourTest {
    @Override
    String runtime() {
        return "container";
    }
}
