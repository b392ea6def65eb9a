package dev.airlock.sandbox;

/** The limits suite in a QEMU microVM: the memory limit is the VM's RAM, the pids limit a guest cgroup. */
class MicrovmLimitsTest extends SandboxLimitsTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
