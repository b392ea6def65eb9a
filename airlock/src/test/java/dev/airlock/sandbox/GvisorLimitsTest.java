package dev.airlock.sandbox;

/**
 * The limits suite under gVisor: the host cgroup bounds the whole sandbox, so the agent enforces
 * the per-command limits (a pids cgroup inside gVisor, its memory guard) and the sandbox outlives
 * a hog or a fork bomb as on the other runtimes.
 */
class GvisorLimitsTest extends SandboxLimitsTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
