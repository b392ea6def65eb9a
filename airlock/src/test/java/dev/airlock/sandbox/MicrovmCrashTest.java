package dev.airlock.sandbox;

/** Killing a sandbox's QEMU. */
class MicrovmCrashTest extends SandboxCrashTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
