package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;

/**
 * The behavioural suite on a microVM restored from a VM template (built by this run's first
 * start) instead of booted: it must behave exactly like a cold-booted one.
 */
class TemplateBehaviourTest extends SandboxBehaviourTest {
    @Override
    String runtime() {
        return "microvm";
    }

    @Override
    void started(SandboxEngine engine, Sandbox sandbox) {
        assertThat(engine.origin(sandbox)).startsWith("template ");
    }
}
