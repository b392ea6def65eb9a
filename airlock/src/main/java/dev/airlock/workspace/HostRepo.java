package dev.airlock.workspace;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.sandbox.SandboxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The user's git repository on the host. Everything here reads it or adds objects and refs under
 * {@code refs/airlock/} and {@code refs/heads/airlock/}; nothing touches its working tree, index
 * or current branch.
 */
public record HostRepo(Path root, String head, @Nullable String branch) {
    /**
     * The {@code -c} setting for git commands that write what a pull hands back: objects and refs
     * fsynced. git's default fsyncs packs only, so a host crash soon after a pull left the branch
     * an empty file, its commits unreachable.
     */
    public static final String DURABLE = "core.fsync=committed";

    public static HostRepo open(Path dir) {
        HostCommand.Result top = git(dir, List.of("rev-parse", "--show-toplevel"), Map.of());
        if (!top.ok()) {
            throw new SandboxException("--workspace " + dir + " is not inside a git repository; run git init there, or"
                    + " point --workspace at a repository");
        }
        Path root = Path.of(top.output().strip());
        HostCommand.Result head = git(root, List.of("rev-parse", "--verify", "-q", "HEAD^{commit}"), Map.of());
        if (!head.ok()) {
            throw new SandboxException("the repository " + root + " has no commits yet; commit something first");
        }
        HostCommand.Result branch = git(root, List.of("symbolic-ref", "-q", "--short", "HEAD"), Map.of());
        return new HostRepo(
                root, head.output().strip(), branch.ok() ? branch.output().strip() : null);
    }

    /** Runs git in this repo and returns its output, or throws with git's own message. */
    public String git(String... args) {
        return git(Map.of(), args);
    }

    public String git(Map<String, String> env, String... args) {
        HostCommand.Result r = git(root, List.of(args), env);
        if (!r.ok()) {
            throw SandboxException.failed("git " + String.join(" ", args) + " failed in " + root + ": "
                    + r.output().strip());
        }
        return r.output();
    }

    public HostCommand.Result tryGit(String... args) {
        return git(root, List.of(args), Map.of());
    }

    /** Runs git with {@code stdin} as its input (e.g. {@code update-ref --stdin}); never throws for a failure. */
    public HostCommand.Result tryGitWithInput(byte[] stdin, String... args) {
        List<String> argv = new ArrayList<>(List.of("git", "-C", root.toString()));
        argv.addAll(List.of(args));
        return HostCommand.run(argv, null, null, Map.of(), stdin);
    }

    /**
     * Makes refs that git has just written durable: git (run with {@link #DURABLE}) fsyncs a ref's
     * file before renaming it into place, but not the directories the rename and any new
     * directory above it changed, so a host crash could still take the ref back and leave its
     * {@code .lock} file behind. Those directories, up to {@code refs/}, are fsynced here.
     */
    public void syncRefs(String... refs) {
        Path common = Path.of(
                git("rev-parse", "--path-format=absolute", "--git-common-dir").strip());
        Path top = common.resolve("refs");
        Set<Path> dirs = new LinkedHashSet<>();
        for (String ref : refs) {
            for (Path d = common.resolve(ref).getParent(); d != null && d.startsWith(top); d = d.getParent()) {
                dirs.add(d);
            }
        }
        for (Path d : dirs) {
            if (Files.isDirectory(d)) { // refs kept elsewhere (a reftable) have no such directory
                HostFiles.syncDirectory(d);
            }
        }
    }

    static HostCommand.Result git(Path dir, List<String> args, Map<String, String> env) {
        List<String> argv = new ArrayList<>(List.of("git", "-C", dir.toString()));
        argv.addAll(args);
        return HostCommand.run(argv, null, null, env);
    }
}
