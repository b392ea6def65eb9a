package dev.airlock.vmm;

import java.util.Optional;

/**
 * What Airlock needs from a virtual machine monitor. Each backend launches a detached VMM
 * process per VM and can find it again from the VM's state directory, so the CLI or daemon that
 * started a VM may die without taking the VM with it.
 *
 * <p>Firecracker (REST on a unix socket, vsock via {@code CONNECT <port>}) and Cloud Hypervisor
 * fit here as further permitted backends; they are not written until a host runs them.
 */
public sealed interface Vmm permits QemuMicrovm {

    String name();

    /** Starts the VMM detached from the caller and returns once its sockets exist. */
    RunningVm launch(VmSpec spec);

    /** The VM launched earlier with this spec, if its VMM process is still alive. */
    Optional<RunningVm> attach(VmSpec spec);
}
