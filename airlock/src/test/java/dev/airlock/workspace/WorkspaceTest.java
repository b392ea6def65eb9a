package dev.airlock.workspace;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The workspace round trip end to end, with real git repositories made here, the real CLI and
 * daemon, and the guest's own git: changes made inside come back as commits on a branch, and
 * the user's working tree, index and HEAD never move.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class WorkspaceTest {
    /** microvm or container: the suite runs once per runtime. */
    abstract String runtime();

    private AirlockDirs dirs;
    private Cli cli;
    private Path root;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("workspace-" + runtime());
        cli = new Cli(dirs).inRuntime(runtime());
        root = Files.createTempDirectory("airlock-repos");
    }

    @AfterAll
    void tearDown() throws Exception {
        Cli.Result ps = cli.run("ps", "-a", "-q");
        for (String name : ps.out().lines().toList()) {
            cli.run("rm", "-f", name);
        }
        Path pid = dirs.runtime().resolve("airlockd.pid");
        if (Files.exists(pid)) {
            ProcessHandle.of(Long.parseLong(Files.readString(pid).strip())).ifPresent(ProcessHandle::destroy);
        }
        HostFiles.deleteTree(root);
        TestHost.cleanUp(dirs);
    }

    /** A repository with text, binary, executable and symlinked files, one commit, a dirty tree. */
    private Path repo(String name, boolean dirty) throws Exception {
        Path r = Files.createDirectories(root.resolve(name));
        git(r, "init", "-q", "-b", "main");
        git(r, "config", "user.name", "Test User");
        git(r, "config", "user.email", "test@example.com");
        Files.writeString(r.resolve("a.txt"), "alpha\n");
        Files.writeString(r.resolve("d.txt"), "to be deleted\n");
        Files.writeString(r.resolve("r.txt"), "to be renamed\n");
        Files.writeString(r.resolve("script.sh"), "#!/bin/sh\necho hi\n");
        Files.writeString(r.resolve(".gitignore"), "build/\n");
        git(r, "add", "-A");
        git(r, "commit", "-q", "-m", "initial");
        if (dirty) {
            Files.writeString(r.resolve("a.txt"), "alpha\nuncommitted line\n");
            Files.createDirectories(r.resolve("build"));
            Files.writeString(r.resolve("build/ignored.o"), "ignored");
            Files.writeString(r.resolve("untracked.txt"), "untracked\n");
        }
        return r;
    }

    /** Runs git in {@code repo}, asserting it succeeds; returns its output. */
    static String git(Path repo, String... args) {
        List<String> argv = new ArrayList<>(List.of("git", "-C", repo.toString()));
        argv.addAll(List.of(args));
        HostCommand.Result r = HostCommand.run(argv, null, null);
        assertThat(r.exitCode())
                .as("git " + String.join(" ", args) + ": " + r.output())
                .isZero();
        return r.output();
    }

    /** Everything about the user's checkout that a sandbox must never change. */
    private record Checkout(String head, String branch, String status, String indexHash) {
        static Checkout of(Path repo) {
            return new Checkout(
                    git(repo, "rev-parse", "HEAD"),
                    git(repo, "symbolic-ref", "HEAD"),
                    git(repo, "status", "--porcelain", "--untracked-files=all"),
                    Hashing.sha256(repo.resolve(".git/index")));
        }
    }

    private static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as(r.err()).isZero();
        return r;
    }

    @Test
    void committedChangesComeBackAsABranchAndTheCheckoutIsUntouched() throws Exception {
        Path repo = repo("committed", true);
        Checkout before = Checkout.of(repo);
        String base = before.head().strip();
        String work = String.join(
                " && ",
                "cd /workspace",
                "git status --porcelain | grep -q . && exit 9 || true", // no uncommitted state without --uncommitted
                "test ! -e untracked.txt && test ! -e build",
                "echo beta >> a.txt",
                "head -c 300000 /dev/urandom > blob.bin",
                "git rm -q d.txt",
                "git mv r.txt r2.txt",
                "chmod +x script.sh",
                "ln -s a.txt link",
                "git add -A && git commit -q -m 'first change'",
                "echo gamma > c.txt && git add c.txt && git commit -q -m 'second change'",
                "sha256sum blob.bin");
        Cli.Result run = ok(cli.run("run", "--name", "ws-c", "--workspace", repo.toString(), "--", "sh", "-c", work));
        String blobSha = run.out().strip().split("\\s+")[0];

        ok(cli.run("pull", "ws-c"));
        assertThat(Checkout.of(repo)).isEqualTo(before);
        assertThat(git(repo, "rev-list", "--count", base + "..airlock/ws-c").strip())
                .isEqualTo("2");
        assertThat(git(repo, "merge-base", "airlock/ws-c", "main").strip()).isEqualTo(base);
        assertThat(git(repo, "log", "--format=%s", base + "..airlock/ws-c")).isEqualTo("second change\nfirst change\n");
        assertThat(git(repo, "diff", "--name-status", "-M", base, "airlock/ws-c")
                        .lines()
                        .sorted()
                        .toList())
                .containsExactly(
                        "A\tblob.bin",
                        "A\tc.txt",
                        "A\tlink",
                        "D\td.txt",
                        "M\ta.txt",
                        "M\tscript.sh",
                        "R100\tr.txt\tr2.txt");
        assertThat(git(repo, "ls-tree", "airlock/ws-c", "script.sh")).startsWith("100755");
        assertThat(git(repo, "ls-tree", "airlock/ws-c", "link")).startsWith("120000");
        assertThat(git(repo, "show", "airlock/ws-c:link")).isEqualTo("a.txt");
        assertThat(git(repo, "show", "airlock/ws-c:a.txt")).isEqualTo("alpha\nbeta\n");
        Path blob = Files.createTempFile("blob", ".bin");
        HostCommand.run(
                List.of("sh", "-c", "git -C " + repo + " cat-file blob airlock/ws-c:blob.bin > " + blob), null, null);
        assertThat(Hashing.sha256(blob)).isEqualTo(blobSha);
        Files.delete(blob);
        assertThat(git(repo, "rev-parse", "refs/airlock/base/ws-c").strip()).isEqualTo(base);

        // Pulling again is a no-op; a branch that moved elsewhere is reported, never forced.
        ok(cli.run("pull", "ws-c"));
        git(repo, "branch", "-f", "airlock/ws-c", "main");
        Files.writeString(repo.resolve("x.txt"), "x");
        String other = git(
                        repo,
                        "commit-tree",
                        git(repo, "rev-parse", "main^{tree}").strip(),
                        "-p",
                        "main",
                        "-m",
                        "other")
                .strip();
        git(repo, "update-ref", "refs/heads/airlock/ws-c", other);
        Files.delete(repo.resolve("x.txt"));
        Cli.Result diverged = cli.run("pull", "ws-c");
        assertThat(diverged.exit()).isEqualTo(125);
        assertThat(diverged.err()).contains("has diverged");
        assertThat(git(repo, "rev-parse", "airlock/ws-c").strip()).isEqualTo(other);
    }

    @Test
    void uncommittedWorkTravelsBothWays() throws Exception {
        Path repo = repo("uncommitted", true);
        Checkout before = Checkout.of(repo);
        String base = before.head().strip();
        // In: the host's uncommitted changes arrive as uncommitted changes (ignored files stay home).
        String look = "cd /workspace && git status --porcelain --untracked-files=all && test ! -e build"
                + " && echo more >> untracked.txt && rm d.txt";
        Cli.Result run = ok(cli.run(
                "run", "--name", "ws-u", "--workspace", repo.toString(), "--uncommitted", "--", "sh", "-c", look));
        assertThat(run.out()).isEqualTo(" M a.txt\n?? untracked.txt\n");
        // Out: commit the sandbox's uncommitted state as one commit.
        Cli.Result diff = ok(cli.run("diff", "ws-u"));
        assertThat(diff.out()).contains("uncommitted line").contains("d.txt");
        ok(cli.run("commit", "ws-u", "-m", "sandbox work"));
        assertThat(Checkout.of(repo)).isEqualTo(before);
        assertThat(git(repo, "log", "--format=%s", base + "..airlock/ws-u")).isEqualTo("sandbox work\n");
        assertThat(git(repo, "diff", "--name-status", base, "airlock/ws-u")
                        .lines()
                        .sorted()
                        .toList())
                .containsExactly("A\tuntracked.txt", "D\td.txt", "M\ta.txt");
        assertThat(git(repo, "show", "airlock/ws-u:untracked.txt")).isEqualTo("untracked\nmore\n");
    }

    @Test
    void fiveSandboxesWorkOnOneRepoInParallel() throws Exception {
        Path repo = repo("parallel", false);
        Checkout before = Checkout.of(repo);
        List<CompletableFuture<Cli.Result>> runs = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            String n = "par" + i;
            runs.add(CompletableFuture.supplyAsync(() -> cli.run(
                    "run",
                    "--name",
                    n,
                    "--memory",
                    "256m",
                    "--workspace",
                    repo.toString(),
                    "--",
                    "sh",
                    "-c",
                    "cd /workspace && echo " + n + " > " + n + ".txt && git add -A && git commit -q -m " + n)));
        }
        runs.forEach(r -> ok(r.join()));
        for (int i = 0; i < 5; i++) {
            ok(cli.run("pull", "par" + i));
        }
        String base = before.head().strip();
        for (int i = 0; i < 5; i++) {
            assertThat(git(repo, "diff", "--name-only", base, "airlock/par" + i))
                    .isEqualTo("par" + i + ".txt\n");
            assertThat(git(repo, "log", "--format=%s", base + "..airlock/par" + i))
                    .isEqualTo("par" + i + "\n");
        }
        assertThat(Checkout.of(repo)).isEqualTo(before);
    }

    @Test
    void setupRunsOncePerLockfileContent() throws Exception {
        Path repo = repo("setup", false);
        // Templates live in the shared cache: a fresh token keeps this run's keys its own.
        String token = java.util.UUID.randomUUID().toString();
        Files.writeString(repo.resolve("requirements.txt"), "lib==1 # " + token + "\n");
        Files.writeString(repo.resolve("airlock.toml"), """
                [setup]
                run = ["head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\\\n' > /var/tmp/setup-id", \
                "mkdir -p build && cp requirements.txt build/installed"]
                keys = ["requirements.txt"]
                """);
        git(repo, "add", "-A");
        git(repo, "commit", "-q", "-m", "add setup");
        String show = "cat /var/tmp/setup-id; echo; cat /workspace/build/installed";

        Cli.Result first = ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show));
        assertThat(first.err()).contains("running setup");
        Cli.Result second = ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show));
        assertThat(second.err())
                .contains("dependencies ready from workspace template")
                .doesNotContain("running setup");
        assertThat(second.out()).isEqualTo(first.out()).endsWith("lib==1 # " + token + "\n");

        Files.writeString(repo.resolve("requirements.txt"), "lib==2 # " + token + "\n");
        git(repo, "commit", "-q", "-am", "bump lib");
        Cli.Result third = ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show));
        assertThat(third.err()).contains("running setup");
        assertThat(third.out()).endsWith("lib==2 # " + token + "\n");
        assertThat(third.out().lines().findFirst())
                .isNotEqualTo(first.out().lines().findFirst());
        Cli.Result ls = ok(cli.run("workspace", "ls", "--json"));
        assertThat(ls.out()).contains(repo.toString());
    }

    @Test
    void anAgentGetsOnlyTheCredentialsPassedExplicitly() throws Exception {
        Path repo = repo("agent", false);
        Map<String, String> env = Map.of("AGENT_TOKEN", "s3cret", "OTHER_SECRET", "never");
        String agent = "cd /workspace && echo token=${AGENT_TOKEN:-unset} other=${OTHER_SECRET:-unset}"
                + " && echo done > agent.txt && git add -A && git commit -q -m 'agent commit'";
        Cli.Result r = ok(cli.run(
                env,
                new byte[0],
                "run",
                "--name",
                "ag",
                "--workspace",
                repo.toString(),
                "--agent",
                agent,
                "--agent-env",
                "AGENT_TOKEN"));
        assertThat(r.out()).isEqualTo("token=s3cret other=unset\n");
        ok(cli.run("pull", "ag"));
        assertThat(git(repo, "show", "airlock/ag:agent.txt")).isEqualTo("done\n");
        Cli.Result missing = cli.run(
                Map.of(),
                new byte[0],
                "run",
                "--rm",
                "--workspace",
                repo.toString(),
                "--agent",
                "true",
                "--agent-env",
                "NOT_SET_ANYWHERE");
        assertThat(missing.exit()).isEqualTo(125);
        assertThat(missing.err()).contains("--agent-env NOT_SET_ANYWHERE");
    }
    /** A repository whose airlock.toml runs {@code setup} keyed by requirements.txt, committed. */
    private Path repoWithSetup(String name, String token, String... setup) throws Exception {
        Path r = repo(name, false);
        Files.writeString(r.resolve("requirements.txt"), "lib==1 # " + token + "\n");
        StringBuilder run = new StringBuilder();
        for (String cmd : setup) {
            run.append(run.isEmpty() ? "" : ", ")
                    .append('"')
                    .append(cmd.replace("\"", "\\\""))
                    .append('"');
        }
        Files.writeString(r.resolve("airlock.toml"), "[setup]\nrun = [" + run + "]\nkeys = [\"requirements.txt\"]\n");
        git(r, "add", "-A");
        git(r, "commit", "-q", "-m", "add setup");
        return r;
    }

    private String refs(Path repo) {
        return git(repo, "for-each-ref", "--format=%(refname) %(objectname)");
    }

    private List<Path> staging() throws Exception {
        Path staging = dirs.cache().resolve("workspaces/.staging");
        if (!Files.isDirectory(staging)) {
            return List.of();
        }
        try (var s = Files.list(staging)) {
            return s.toList();
        }
    }

    @Test
    void aTemplateIsNeverSharedWithAnotherRepository() throws Exception {
        // Finding 5: same setup, same lockfile, two repositories: the second must not start from
        // the first one's layer, which holds the first one's /workspace and its git objects.
        String token = java.util.UUID.randomUUID().toString();
        String setup = "mkdir -p build && cp requirements.txt build/installed";
        Path first = repoWithSetup("tmpl-first", token, setup);
        Files.writeString(first.resolve("private.txt"), "first repository's own file\n");
        git(first, "add", "-A");
        git(first, "commit", "-q", "-m", "private work");
        String privateCommit = git(first, "rev-parse", "HEAD").strip();
        Path second = repoWithSetup("tmpl-second", token, setup);

        ok(cli.run("run", "--rm", "--workspace", first.toString(), "--", "true"));
        String look = "cd /workspace && if git cat-file -e " + privateCommit + " 2>/dev/null || test -e private.txt;"
                + " then echo LEAKED; else echo clean; fi; cat build/installed";
        Cli.Result r = ok(cli.run("run", "--rm", "--workspace", second.toString(), "--", "sh", "-c", look));
        assertThat(r.out()).isEqualTo("clean\nlib==1 # " + token + "\n");
        assertThat(r.err()).contains("running setup");
    }

    @Test
    void aTemplateSaveCutShortNeverBlocksItsKey() throws Exception {
        String token = java.util.UUID.randomUUID().toString();
        Path repo = repoWithSetup("tmpl-crash", token, "mkdir -p build && cp requirements.txt build/installed");
        String show = "cat /workspace/build/installed";
        // The daemon dies after the layer is copied and before the template is published. Failpoint:
        // that window is milliseconds wide, no outside kill can be timed into it.
        List<Path> before = staging();
        Cli.Result crashed = cli.withDaemonFailpoint(
                "workspace-template-staged",
                "run",
                "--name",
                "tmpl-crash",
                "--workspace",
                repo.toString(),
                "--",
                "true");
        assertThat(crashed.exit()).as(crashed.err()).isEqualTo(125);
        List<Path> left = new ArrayList<>(staging());
        left.removeAll(before);
        assertThat(left).as("the dead save's staging directory").hasSize(1);

        Cli.Result again = ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show));
        assertThat(again.err()).contains("running setup");
        assertThat(left.getFirst()).doesNotExist();
        Cli.Result hit = ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show));
        assertThat(hit.err()).contains("dependencies ready from workspace template");
        assertThat(hit.out()).isEqualTo("lib==1 # " + token + "\n");

        // What older versions left when cut short between moving the layer in and writing
        // template.json: the layer without its metadata. It must not block the key either.
        Cli.Result ls = ok(cli.run("workspace", "ls", "--json"));
        var templates = tools.jackson.databind.json.JsonMapper.builder().build().readTree(ls.out());
        String key = java.util.stream.StreamSupport.stream(templates.spliterator(), false)
                .filter(t -> t.get("repo").asString().equals(repo.toString()))
                .map(t -> t.get("key").asString())
                .findFirst()
                .orElseThrow(() -> new AssertionError("no template for " + repo + " in " + ls.out()));
        Files.delete(dirs.cache().resolve("workspaces").resolve(key).resolve("template.json"));
        Cli.Result resaved = ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show));
        assertThat(resaved.err()).contains("running setup");
        assertThat(ok(cli.run("run", "--rm", "--workspace", repo.toString(), "--", "sh", "-c", show))
                        .err())
                .contains("dependencies ready from workspace template");
    }

    @Test
    void aSandboxWhoseSetupFailedCanStillBePulled() throws Exception {
        Path repo = repoWithSetup(
                "setup-fails", java.util.UUID.randomUUID().toString(), "echo partial > partial.txt", "exit 3");
        Cli.Result run = cli.run("run", "--name", "setup-fails", "--workspace", repo.toString(), "--", "true");
        assertThat(run.exit()).as(run.err()).isEqualTo(125);
        assertThat(run.err()).contains("setup command failed").contains("airlock pull setup-fails");
        ok(cli.run("commit", "setup-fails", "-m", "what setup left"));
        assertThat(git(repo, "show", "airlock/setup-fails:partial.txt")).isEqualTo("partial\n");
    }

    @Test
    void aPullTakesOnlyAVerifiedBundleAndChangesNothingWhenItFails() throws Exception {
        // Finding 4, with the guest made hostile from inside: as root it replaces git with a
        // script whose "bundle create" hands the host a crafted file instead.
        Path repo = repo("hostile-pull", false);
        Path other = repo("other-repo", false);
        Files.writeString(other.resolve("secret.txt"), "secret\n");
        git(other, "add", "-A");
        git(other, "commit", "-q", "-m", "secret");
        String secret = git(other, "rev-parse", "HEAD").strip();
        ok(cli.run("run", "-d", "--name", "hp", "--workspace", repo.toString()));
        String prepare = String.join(
                "\n",
                "set -e",
                "cd /workspace",
                "base=$(git rev-parse HEAD)",
                "echo work > work.txt && git add -A && git commit -q -m work",
                "real=$(command -v git)",
                "cp \"$real\" \"$real.real\"",
                "git tag -a evil -m evil HEAD",
                "git bundle create -q /crafted-tags.bundle \"$base..HEAD\" refs/tags/evil",
                "printf 'gitdir: %s/.git\\n' \"$OTHER\" > /crafted-gitdir.bundle",
                "git checkout -q --orphan rewritten && git commit -q -m rewritten",
                "git bundle create -q /crafted-orphan.bundle HEAD && git checkout -q main",
                "printf '#!/bin/sh\\nif [ \"$1 $2\" = \"bundle create\" ]; then cp /crafted.bundle \"$4\"; exit 0; fi\\n"
                        + "exec %s.real \"$@\"\\n' \"$real\" > \"$real\"");
        ok(cli.run("exec", "-e", "OTHER=" + other, "hp", "--", "sh", "-c", prepare));
        String before = refs(repo);

        ok(cli.run("exec", "hp", "--", "cp", "/crafted-gitdir.bundle", "/crafted.bundle"));
        Cli.Result gitdir = cli.run("pull", "hp");
        assertThat(gitdir.exit()).as(gitdir.err()).isEqualTo(125);
        assertThat(gitdir.err()).contains("not a git bundle");
        assertThat(refs(repo)).isEqualTo(before);
        assertThat(HostCommand.run(List.of("git", "-C", repo.toString(), "cat-file", "-e", secret), null, null)
                        .ok())
                .isFalse();

        ok(cli.run("exec", "hp", "--", "cp", "/crafted-orphan.bundle", "/crafted.bundle"));
        Cli.Result orphan = cli.run("pull", "hp");
        assertThat(orphan.exit()).as(orphan.err()).isEqualTo(125);
        assertThat(orphan.err()).contains("nothing was changed");
        assertThat(refs(repo)).isEqualTo(before);

        ok(cli.run("exec", "hp", "--", "cp", "/crafted-tags.bundle", "/crafted.bundle"));
        ok(cli.run("pull", "hp"));
        assertThat(git(repo, "tag", "-l")).isEmpty();
        assertThat(git(repo, "show", "airlock/hp:work.txt")).isEqualTo("work\n");
        assertThat(refs(repo)).doesNotContain("refs/tags/").doesNotContain("refs/airlock/tmp/");
    }

    @Test
    void anInterruptedPullLeavesNoTemporaryRefs() throws Exception {
        Path repo = repo("interrupted-pull", false);
        // What an older Airlock left when killed during a push: a temporary ref nothing removed.
        git(repo, "update-ref", "refs/airlock/tmp/0123456789ab", "HEAD");
        ok(cli.run(
                "run",
                "--name",
                "ip",
                "--workspace",
                repo.toString(),
                "--",
                "sh",
                "-c",
                "cd /workspace && echo x > x.txt && git add -A && git commit -q -m x"));
        // Killed between the fetch into a temporary ref and the ref transaction. Failpoint: no
        // outside kill can be timed into that window.
        Cli.Result crashed = cli.withDaemonFailpoint("workspace-pull-fetched", "pull", "ip");
        assertThat(crashed.exit()).as(crashed.err()).isEqualTo(125);
        assertThat(refs(repo)).contains("refs/airlock/tmp/").doesNotContain("refs/heads/airlock/ip");
        ok(cli.run("pull", "ip"));
        assertThat(git(repo, "show", "airlock/ip:x.txt")).isEqualTo("x\n");
        assertThat(refs(repo)).doesNotContain("refs/airlock/tmp/");
    }
}
