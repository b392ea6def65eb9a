package dev.airlock.workspace;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestLimitException;
import dev.airlock.host.BoundedBuffer;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import dev.airlock.net.UntrustedText;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * A repository's copy inside a sandbox, at {@value #PATH}: pushed in as one git bundle (history
 * and, optionally, the uncommitted state as an extra commit that is unpacked back into
 * uncommitted changes), and pulled back as a bundle of the sandbox's new commits fetched into a
 * branch of the host repository. Streams, never file by file.
 */
public final class Workspace {
    /**
     * The workspace's own commands (git, setup) run as root whatever the sandbox's default user
     * (its image's USER): the repository is pushed as root.
     */
    private static final String ROOT = "0";

    public static final String PATH = "/workspace";
    private static final String IN_BUNDLE = "/tmp/airlock-in.bundle";
    private static final String OUT_BUNDLE = "/tmp/airlock-out.bundle";
    /** The most a pull takes from a sandbox: its new commits, packed. */
    static final long MAX_BUNDLE_BYTES = 4L << 30;

    private static final Pattern PULL_ANSWER = Pattern.compile("(none|diverged|[0-9a-f]{40,64}) ([0-9]{1,9})");

    private Workspace() {}

    /**
     * How long each step may take and how much it may take from the guest, which is hostile: a
     * guest that never answers or answers without end stops only its own step, with an error
     * that names the bound. The defaults are generous for real work under emulation.
     *
     * @param script a script of ours (unpack, pack): its deadline
     * @param scriptOutput what such a script may print (its answer is one short line)
     * @param setup the deadline of each of the repository's setup commands
     * @param setupOutput what setup may print, all commands together (streamed to the client)
     * @param diff the deadline of a diff
     * @param diffBytes the largest patch a diff streams to the client
     * @param bundle the deadline of moving the repository's bundle in or the sandbox's out
     */
    public record Bounds(
            Duration script,
            long scriptOutput,
            Duration setup,
            long setupOutput,
            Duration diff,
            long diffBytes,
            Duration bundle) {
        public static final Bounds DEFAULT = new Bounds(
                Duration.ofMinutes(10),
                64 << 10,
                Duration.ofHours(1),
                64L << 20,
                Duration.ofMinutes(10),
                256L << 20,
                Duration.ofMinutes(30));
    }

    /** What the sandbox printed on stderr, as much as a message shows, safe for a terminal. */
    private static final int SHOWN_STDERR = 4096;

    /** What was pushed: the commit the sandbox starts from, and whether uncommitted work came along. */
    public record Pushed(String base, boolean uncommitted) {}

    /** Copies the repository into a running sandbox's {@value #PATH}, replacing tracked files there. */
    public static Pushed push(GuestChannel ch, HostRepo repo, boolean uncommitted, Bounds bounds)
            throws IOException, InterruptedException {
        TempRefs.removeLeftovers(repo);
        Path tmp = Files.createTempDirectory("airlock-push");
        String tmpRef = TempRefs.create();
        try {
            String wip = uncommitted ? snapshotUncommitted(repo, tmp, tmpRef) : null;
            Path bundle = tmp.resolve("repo.bundle");
            if (wip != null) {
                repo.git("bundle", "create", "-q", bundle.toString(), "HEAD", tmpRef);
            } else {
                repo.git("bundle", "create", "-q", bundle.toString(), "HEAD");
            }
            try (InputStream in = Files.newInputStream(bundle)) {
                ch.writeFile(IN_BUNDLE, in, 0600, false, bounds.bundle());
            }
            String branch = repo.branch() != null ? repo.branch() : "airlock";
            String name = repo.tryGit("config", "user.name").output().strip();
            String email = repo.tryGit("config", "user.email").output().strip();
            String script = String.join(
                    "\n",
                    "set -e",
                    "if [ -d " + PATH + "/.git ]; then",
                    "  cd " + PATH,
                    "  git fetch -q " + IN_BUNDLE + " '+HEAD:refs/airlock-in/HEAD' '+refs/*:refs/airlock-in/*'",
                    "else",
                    "  git clone -q --no-checkout " + IN_BUNDLE + " " + PATH,
                    "  cd " + PATH,
                    "  git remote remove origin",
                    "fi",
                    "git config user.name \"$NAME\"",
                    "git config user.email \"$EMAIL\"",
                    "git checkout -q -f -B \"$BRANCH\" \"$BASE\"",
                    "git clean -q -fd",
                    "if [ -n \"$WIP\" ]; then git checkout -q -f \"$WIP\" -- . && git reset -q --hard \"$WIP\""
                            + " && git reset -q --soft \"$BASE\" && git reset -q; fi",
                    "rm -f " + IN_BUNDLE);
            Map<String, String> env = Map.of(
                    "BASE",
                    repo.head(),
                    "BRANCH",
                    branch,
                    "WIP",
                    wip == null ? "" : wip,
                    "NAME",
                    name.isEmpty() ? "Airlock sandbox" : name,
                    "EMAIL",
                    email.isEmpty() ? "sandbox@airlock.invalid" : email);
            run(ch, "unpack the workspace", List.of("sh", "-c", script), env, bounds);
            return new Pushed(repo.head(), wip != null);
        } finally {
            repo.tryGit("update-ref", "-d", tmpRef);
            HostFiles.deleteTree(tmp);
        }
    }

    /**
     * Records the working tree (tracked changes, deletions and untracked files that .gitignore
     * does not exclude) as a commit on top of HEAD, using a private index so the user's index is
     * left exactly as it was. Returns null when there is nothing uncommitted.
     */
    private static @Nullable String snapshotUncommitted(HostRepo repo, Path tmp, String tmpRef) throws IOException {
        Path index = tmp.resolve("index");
        Path realIndex =
                repo.root().resolve(repo.git("rev-parse", "--git-path", "index").strip());
        if (Files.isRegularFile(realIndex)) {
            Files.copy(realIndex, index);
        }
        Map<String, String> env = Map.of("GIT_INDEX_FILE", index.toString());
        repo.git(env, "add", "-A");
        String tree = repo.git(env, "write-tree").strip();
        if (tree.equals(repo.git("rev-parse", "HEAD^{tree}").strip())) {
            return null;
        }
        String commit = repo.git(
                        Map.of(
                                "GIT_AUTHOR_NAME",
                                "airlock",
                                "GIT_AUTHOR_EMAIL",
                                "airlock@localhost",
                                "GIT_COMMITTER_NAME",
                                "airlock",
                                "GIT_COMMITTER_EMAIL",
                                "airlock@localhost"),
                        "commit-tree",
                        tree,
                        "-p",
                        "HEAD",
                        "-m",
                        "airlock: uncommitted changes")
                .strip();
        repo.git("update-ref", tmpRef, commit);
        return commit;
    }

    /**
     * Runs the repo's setup commands in the workspace, output streamed to the given sinks: each
     * command within {@link Bounds#setup()}, all of them printing at most {@link
     * Bounds#setupOutput()}.
     */
    public static void setup(GuestChannel ch, List<String> commands, OutputStream out, OutputStream err, Bounds bounds)
            throws IOException, InterruptedException {
        Counted printed = new Counted();
        for (String cmd : commands) {
            ExitStatus st;
            try {
                st = ch.execBounded(
                        ExecSpec.builder("sh", "-ec", cmd).cwd(PATH).user(ROOT).build(),
                        printed.through(out),
                        printed.through(err),
                        bounds.setupOutput() - printed.bytes.get(),
                        bounds.setup());
            } catch (GuestLimitException e) {
                throw SandboxException.failed("setup command stopped: " + cmd + ": "
                        + (e.limit() == GuestLimitException.Limit.SIZE
                                ? "the setup commands printed more than " + bounds.setupOutput()
                                        + " bytes together (a size cap of the host)"
                                : e.getMessage()));
            }
            if (st.shellStatus() != 0) {
                throw new SandboxException("setup command failed (exit " + st.shellStatus() + "): " + cmd
                        + "; fix [setup].run in airlock.toml");
            }
        }
    }

    /**
     * The sandbox's changes against the base, committed and uncommitted, as a patch streamed to
     * {@code out}: at most {@link Bounds#diffBytes()}, within {@link Bounds#diff()}.
     */
    public static void diff(GuestChannel ch, String base, OutputStream out, Bounds bounds)
            throws IOException, InterruptedException {
        String script = "cd " + PATH + " && git add -A -N . && git -c core.quotepath=off diff --stat \"$BASE\" && echo"
                + " && git -c core.quotepath=off diff --binary \"$BASE\"";
        BoundedBuffer err = new BoundedBuffer(SHOWN_STDERR);
        ExitStatus st;
        try {
            st = ch.execBounded(
                    ExecSpec.builder("sh", "-c", script)
                            .env(Map.of("BASE", base))
                            .user(ROOT)
                            .build(),
                    out,
                    err,
                    bounds.diffBytes(),
                    bounds.diff());
        } catch (GuestLimitException e) {
            throw SandboxException.failed("the diff was cut short: " + e.getMessage());
        }
        if (st.shellStatus() != 0) {
            throw SandboxException.failed("cannot diff the workspace: " + shown(err));
        }
    }

    /** The outcome of a pull. */
    public record Pulled(
            String branch, String base, @Nullable String head, int commits, int uncommittedLeft) {}

    /**
     * Brings the sandbox's commits since {@code base} into {@code refs/heads/<branch>} of the host
     * repository ({@code branch} must be under {@code airlock/}). Only a fast-forward is accepted;
     * diverged history is reported, never forced. The sandbox's bundle is untrusted: see {@link
     * BundleImport}.
     */
    public static Pulled pull(
            GuestChannel ch,
            HostRepo repo,
            String base,
            String branch,
            boolean uncommitted,
            String message,
            Bounds bounds)
            throws IOException, InterruptedException {
        BundleImport.branchRef(repo, branch);
        String script = String.join(
                "\n",
                "set -e",
                "cd " + PATH,
                "if [ \"$UNCOMMITTED\" = 1 ] && [ -n \"$(git status --porcelain)\" ]; then",
                "  git add -A && git commit -q -m \"$MSG\"",
                "fi",
                "head=$(git rev-parse HEAD)",
                "left=$(git status --porcelain | wc -l)",
                "if [ \"$head\" = \"$BASE\" ]; then echo \"none $left\"; exit 0; fi",
                "if ! git merge-base --is-ancestor \"$BASE\" HEAD; then echo \"diverged $left\"; exit 0; fi",
                "git bundle create -q " + OUT_BUNDLE + " \"$BASE..HEAD\"",
                "echo \"$head $left\"");
        String result = run(
                ch,
                "pack the sandbox's commits",
                List.of("sh", "-c", script),
                Map.of("BASE", base, "UNCOMMITTED", uncommitted ? "1" : "0", "MSG", message),
                bounds);
        Matcher answer = PULL_ANSWER.matcher(result.strip());
        if (!answer.matches()) {
            String shown = result.strip().replaceAll("[^\\x20-\\x7e]", "?");
            throw new SandboxException("the sandbox answered the pull with '"
                    + (shown.length() > 80 ? shown.substring(0, 80) + "..." : shown)
                    + "' instead of a commit; nothing was pulled");
        }
        int left = Integer.parseInt(answer.group(2));
        if (answer.group(1).equals("none")) {
            return new Pulled(branch, base, null, 0, left);
        }
        if (answer.group(1).equals("diverged")) {
            throw new SandboxException(
                    SandboxException.Kind.CONFLICT,
                    "the sandbox's history no longer contains its base " + base.substring(0, 12)
                            + " (it was rewritten in the sandbox); nothing was pulled");
        }
        // A private directory (0700): nothing but this process can swap the file once it is checked.
        Path tmp = Files.createTempDirectory("airlock-pull");
        try {
            Path bundle = tmp.resolve("sandbox.bundle");
            try (OutputStream out = Files.newOutputStream(bundle)) {
                ch.readFile(OUT_BUNDLE, out, MAX_BUNDLE_BYTES, bounds.bundle());
            } catch (GuestLimitException e) {
                throw new SandboxException(
                        "cannot take the sandbox's bundle: " + e.getMessage() + "; nothing was pulled");
            }
            BundleImport.Imported imported = BundleImport.apply(repo, bundle, base, branch);
            return new Pulled(branch, base, imported.head(), imported.commits(), left);
        } finally {
            HostFiles.deleteTree(tmp);
        }
    }

    /**
     * The key of a workspace template: the repository, image, setup commands and the content of
     * the key files. The repository is part of it because a template's layer holds that
     * repository's {@value #PATH} (its objects, its ignored and untracked files): another
     * repository with the same setup must not start from it. Stripping {@value #PATH} from the
     * layer instead would also strip what setup made there (node_modules, .venv, build/), which
     * is what a template is for.
     */
    public static String setupKey(HostRepo repo, ProjectConfig cfg, String imageId, String runtime, boolean uncommitted)
            throws IOException {
        // A template is a microVM disk or a container's upper directory: one runtime's is not the other's.
        StringBuilder sb = new StringBuilder("image=" + imageId + "\nruntime=" + runtime + "\n");
        sb.append("repo=").append(repositoryIdentity(repo)).append('\n');
        for (String cmd : cfg.setup()) {
            sb.append("run=").append(cmd).append('\n');
        }
        for (String key : cfg.setupKeys().stream().sorted().toList()) {
            String hash;
            if (uncommitted) {
                Path file = repo.root().resolve(key);
                if (!Files.isRegularFile(file)) {
                    throw new SandboxException("[setup].keys names " + key + ", which is not a file in " + repo.root());
                }
                hash = Hashing.sha256(file);
            } else {
                var show = repo.tryGit("rev-parse", "HEAD:" + key);
                if (!show.ok()) {
                    throw new SandboxException("[setup].keys names " + key + ", which is not committed in "
                            + repo.root() + " (commit it, or use --uncommitted)");
                }
                hash = show.output().strip();
            }
            sb.append("key=").append(key).append('=').append(hash).append('\n');
        }
        return Hashing.sha256(sb.toString()).substring(0, 24);
    }

    /**
     * The repository's git directory (shared by its worktrees), by real path and inode: a
     * repository deleted and another cloned at the same path is another repository.
     */
    private static String repositoryIdentity(HostRepo repo) throws IOException {
        Path common = repo.root()
                .resolve(repo.git("rev-parse", "--git-common-dir").strip())
                .toRealPath();
        Object inode = Files.readAttributes(common, BasicFileAttributes.class).fileKey();
        return common + " " + inode;
    }

    /** Runs one of our scripts, within the script bounds; returns what it printed on stdout. */
    private static String run(GuestChannel ch, String what, List<String> argv, Map<String, String> env, Bounds bounds)
            throws IOException, InterruptedException {
        BoundedBuffer out = new BoundedBuffer((int) bounds.scriptOutput());
        BoundedBuffer err = new BoundedBuffer(SHOWN_STDERR);
        ExitStatus st;
        try {
            st = ch.execBounded(
                    ExecSpec.builder(argv).env(env).user(ROOT).build(),
                    out,
                    err,
                    bounds.scriptOutput(),
                    bounds.script());
        } catch (GuestLimitException e) {
            throw SandboxException.failed("could not " + what + " in the sandbox: " + e.getMessage());
        }
        if (st.shellStatus() != 0) {
            throw SandboxException.failed(
                    "could not " + what + " in the sandbox (exit " + st.shellStatus() + "): " + shown(err));
        }
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }

    /** A guest's stderr for a message: what was kept of it, stripped, with control characters escaped. */
    private static String shown(BoundedBuffer err) {
        return UntrustedText.forTerminal(err.text().strip());
    }

    /** Counts what the setup commands printed, across their stdout and stderr sinks. */
    private static final class Counted {
        private final java.util.concurrent.atomic.AtomicLong bytes = new java.util.concurrent.atomic.AtomicLong();

        OutputStream through(OutputStream sink) {
            return new java.io.FilterOutputStream(sink) {
                @Override
                public void write(int b) throws IOException {
                    add(1);
                    out.write(b);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    add(len);
                    out.write(b, off, len);
                }
            };
        }

        private void add(long n) {
            bytes.addAndGet(n);
        }
    }
}
