package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;

/** The behavioural suite on a QEMU microVM booted cold (kernel, init, mounts). */
class MicrovmBehaviourTest extends SandboxBehaviourTest {
    @Override
    String runtime() {
        return "microvm";
    }

    @Override
    boolean templates() {
        return false;
    }

    @Override
    void started(SandboxEngine engine, Sandbox sandbox) {
        assertThat(engine.origin(sandbox)).isEqualTo("cold");
    }
}
