package dev.airlock.sandbox;

/** The behavioural suite on a QEMU microVM. */
class MicrovmBehaviourTest extends SandboxBehaviourTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
