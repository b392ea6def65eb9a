package dev.airlock.ociruntime;

import dev.airlock.guest.ProcessConfinement;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The OCI {@code process} of a container or of an exec, as far as the microVM runs it: argv,
 * environment (replacing the image's), working directory, {@code uid:gid}, whether it runs on
 * a terminal, and what the guest agent applies to it before it runs (rlimits, capabilities,
 * noNewPrivileges, the container's seccomp filter, umask, additionalGids).
 */
record ProcessSpec(
        List<String> args,
        Map<String, String> env,
        String cwd,
        String user,
        boolean terminal,
        @Nullable ProcessConfinement confinement) {
    ProcessSpec {
        args = List.copyOf(args);
        env = Map.copyOf(env);
    }

    ProcessSpec withTerminal() {
        return new ProcessSpec(args, env, cwd, user, true, confinement);
    }
}
