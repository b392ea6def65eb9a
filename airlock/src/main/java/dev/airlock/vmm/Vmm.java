package dev.airlock.vmm;

import dev.airlock.guest.AgentEndpoint;
import java.util.Optional;

/**
 * What Airlock needs from a virtual machine monitor. Each driver launches a detached VMM
 * process per VM and can find it again from the VM's state directory, so the CLI or daemon that
 * started a VM may die without taking the VM with it.
 *
 * <p>Firecracker (REST on a unix socket, the agent behind hybrid vsock with its {@code CONNECT
 * <port>} handshake: {@link AgentEndpoint.HybridVsock}) and Cloud Hypervisor fit here as further
 * drivers; they are not written until a host runs them.
 */
public interface Vmm {

    String name();

    /** Starts the VMM detached from the caller and returns once its sockets exist. */
    RunningVm launch(VmSpec spec);

    /** The VM launched earlier with this spec, if its VMM process is still alive. */
    Optional<RunningVm> attach(VmSpec spec);

    /** Where the agent of the VM launched with this spec is reached (a virtio-serial socket, a vsock port). */
    AgentEndpoint agentEndpoint(VmSpec spec);
}
