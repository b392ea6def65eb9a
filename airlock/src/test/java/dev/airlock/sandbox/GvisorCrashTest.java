package dev.airlock.sandbox;

/** Killing a gVisor sandbox's Sentry (the runsc-sandbox process that is its kernel). */
class GvisorCrashTest extends SandboxCrashTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
