package dev.airlock.workspace;

import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.SandboxException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.json.JsonMapper;

/**
 * Which repository a sandbox's workspace came from and the commit it started at. Kept on the
 * host beside the sandbox's disk, never in the guest: an agent must not be able to point a pull
 * at another repository or move its own base.
 */
public record WorkspaceMeta(
        String repo,
        String base,
        @Nullable String branch,
        boolean uncommitted,
        @Nullable String templateKey) {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    public static final String FILE = "workspace.json";

    public void write(Path sandboxDir) {
        HostFiles.writeAtomically(sandboxDir.resolve(FILE), JSON.writeValueAsBytes(this));
    }

    public static WorkspaceMeta read(Path sandboxDir, String sandboxName) {
        Path f = sandboxDir.resolve(FILE);
        if (!Files.isRegularFile(f)) {
            throw new SandboxException(
                    "sandbox '" + sandboxName + "' has no workspace; create one with --workspace DIR");
        }
        return JSON.readValue(f.toFile(), WorkspaceMeta.class);
    }
}
