package dev.airlock.workspace;

import dev.airlock.host.Failpoint;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * Brings a bundle that a sandbox made into the host repository, all or nothing. The file is
 * checked as a git bundle by the host first ({@link GitBundle}); only its {@code HEAD} is
 * fetched, without tags, into a temporary ref; both ancestry checks run before anything visible
 * changes; then the branch, its base ref and the temporary ref's removal are one {@code git
 * update-ref --stdin} transaction. Only {@code refs/heads/airlock/*} and {@code refs/airlock/*}
 * are ever written. A pull that answered is durable: objects and refs are fsynced, and so are
 * the ref directories (a host crash right after it keeps the branch and leaves no lock file).
 */
final class BundleImport {
    static final String BRANCH_PREFIX = "airlock/";

    private BundleImport() {}

    /** What a pull changed: the branch's new head and how many commits it has on top of the base. */
    record Imported(String head, int commits) {}

    /**
     * Fast-forwards (or creates) {@code refs/heads/<branch>} to the bundle's {@code HEAD}, which
     * must descend from {@code base}, and points {@code refs/airlock/base/...} at {@code base}.
     *
     * @throws SandboxException with kind CONFLICT when the history does not line up; nothing
     *     changed then
     */
    static Imported apply(HostRepo repo, Path bundle, String base, String branch) throws IOException {
        String branchRef = branchRef(repo, branch);
        String baseRef = "refs/airlock/base/" + branch.substring(BRANCH_PREFIX.length());
        String head = GitBundle.read(bundle)
                .objectId("HEAD")
                .orElseThrow(() -> new SandboxException(
                        "the sandbox's bundle carries no HEAD, so there is nothing to pull; nothing was changed"));
        TempRefs.removeLeftovers(repo);
        String tmpRef = TempRefs.create();
        try {
            var fetch = repo.tryGit(
                    "-c",
                    HostRepo.DURABLE,
                    "-c",
                    "fetch.fsckObjects=true",
                    "-c",
                    "transfer.fsckObjects=true",
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--no-recurse-submodules",
                    bundle.toString(),
                    "HEAD:" + tmpRef);
            if (!fetch.ok()) {
                throw new SandboxException("fetching the sandbox's commits failed; nothing was changed: "
                        + fetch.output().strip());
            }
            String fetched = repo.git("rev-parse", "--verify", "-q", tmpRef + "^{commit}")
                    .strip();
            if (!fetched.equals(head)) {
                throw new SandboxException("the sandbox's bundle says HEAD is " + head + " but holds " + fetched
                        + "; nothing was changed");
            }
            Failpoint.reached("workspace-pull-fetched");
            if (!isAncestor(repo, base, fetched)) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT,
                        "the sandbox's commits do not descend from its base " + base.substring(0, 12)
                                + " (its history was rewritten in the sandbox); nothing was changed");
            }
            String old = current(repo, branchRef);
            if (old != null && !isAncestor(repo, old, fetched)) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT,
                        "branch " + branch + " has diverged from the sandbox's history; nothing was changed. Pull"
                                + " into another branch with --branch airlock/OTHER, or delete it first (git branch"
                                + " -D " + branch + ")");
            }
            String transaction = String.join(
                    "\n",
                    "start",
                    old == null
                            ? "create " + branchRef + " " + fetched
                            : "update " + branchRef + " " + fetched + " " + old,
                    "update " + baseRef + " " + base,
                    "delete " + tmpRef + " " + fetched,
                    "prepare",
                    "commit",
                    "");
            var update = repo.tryGitWithInput(
                    transaction.getBytes(StandardCharsets.UTF_8), "-c", HostRepo.DURABLE, "update-ref", "--stdin");
            if (!update.ok()) {
                throw new SandboxException(
                        SandboxException.Kind.CONFLICT,
                        "updating " + branch + " failed (did it change meanwhile?); nothing was changed: "
                                + update.output().strip());
            }
            repo.syncRefs(branchRef, baseRef);
            int commits = Integer.parseInt(
                    repo.git("rev-list", "--count", base + ".." + fetched).strip());
            return new Imported(fetched, commits);
        } finally {
            TempRefs.delete(repo, tmpRef);
        }
    }

    /** {@code refs/heads/<branch>}, for a valid branch name under {@value #BRANCH_PREFIX} only. */
    static String branchRef(HostRepo repo, String branch) {
        String ref = "refs/heads/" + branch;
        if (!branch.startsWith(BRANCH_PREFIX)
                || branch.length() == BRANCH_PREFIX.length()
                || !repo.tryGit("check-ref-format", ref).ok()) {
            throw new SandboxException("cannot pull into branch '" + branch + "': a pull writes only branches under "
                    + BRANCH_PREFIX + " (e.g. " + BRANCH_PREFIX + "mywork), never your own branches");
        }
        return ref;
    }

    private static boolean isAncestor(HostRepo repo, String ancestor, String descendant) {
        var r = repo.tryGit("merge-base", "--is-ancestor", ancestor, descendant);
        if (r.exitCode() > 1) {
            throw new SandboxException("git merge-base failed in " + repo.root() + ": "
                    + r.output().strip());
        }
        return r.ok();
    }

    private static @Nullable String current(HostRepo repo, String ref) {
        var r = repo.tryGit("rev-parse", "--verify", "-q", ref);
        return r.ok() ? r.output().strip() : null;
    }
}
