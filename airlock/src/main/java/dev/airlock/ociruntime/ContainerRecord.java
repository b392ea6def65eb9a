package dev.airlock.ociruntime;

import dev.airlock.wire.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;

/**
 * What the runtime keeps of one microVM-mode container in {@code <root>/<id>/container.json}:
 * the sandbox that runs it and the stand-in process whose pid conmon and the shim wait for.
 *
 * @param sandbox the Airlock sandbox's name
 * @param pid the stand-in process (0 until it is started)
 * @param created ISO-8601 creation time
 * @param pod for an app container in its pod's VM ({@link VmPod}): the pod's sandbox container's
 *     id; null for a container with a sandbox of its own
 * @param podRoot for such an app container: its root in the pod's VM
 */
record ContainerRecord(
        String id,
        String sandbox,
        String bundle,
        long pid,
        String created,
        Map<String, String> annotations,
        @Nullable String pod,
        @Nullable String podRoot) {
    static final String FILE = "container.json";
    /** Written by {@code start} once the stand-in was released: the container is running. */
    static final String STARTED = "started";
    /** The FIFO the stand-in opens for writing; {@code start} opens it for reading to release it. */
    static final String START_FIFO = "start.fifo";
    /** The container's process as read from its config: its execs inherit its seccomp filter and hostname. */
    static final String PROCESS = "process.json";

    ContainerRecord {
        annotations = Map.copyOf(annotations);
    }

    ContainerRecord withPid(long newPid) {
        return new ContainerRecord(id, sandbox, bundle, newPid, created, annotations, pod, podRoot);
    }

    static ContainerRecord read(Path dir, String id) {
        try {
            return Json.MAPPER.readValue(Files.readString(dir.resolve(FILE)), ContainerRecord.class);
        } catch (NoSuchFileException e) {
            throw new RuntimeError("container \"" + id + "\" does not exist");
        } catch (IOException | JacksonException e) {
            throw new RuntimeError("the state of container " + id + " is unreadable: " + e.getMessage(), e);
        }
    }

    void write(Path dir) {
        try {
            Path tmp = dir.resolve(FILE + ".tmp");
            Files.writeString(tmp, Json.MAPPER.writeValueAsString(this));
            Files.move(tmp, dir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new RuntimeError("cannot write the state of container " + id + ": " + e.getMessage(), e);
        }
    }
}
