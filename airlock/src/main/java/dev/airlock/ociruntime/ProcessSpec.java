package dev.airlock.ociruntime;

import java.util.List;
import java.util.Map;

/**
 * The OCI {@code process} of a container or of an exec, as far as the microVM runs it: argv,
 * environment (replacing the image's), working directory, {@code uid:gid}, and whether it runs on
 * a terminal.
 */
record ProcessSpec(List<String> args, Map<String, String> env, String cwd, String user, boolean terminal) {
    ProcessSpec {
        args = List.copyOf(args);
        env = Map.copyOf(env);
    }
}
