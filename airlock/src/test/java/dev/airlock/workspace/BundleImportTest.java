package dev.airlock.workspace;

import static dev.airlock.workspace.WorkspaceTest.git;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessStamp;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.testing.HostCrashDisk;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The host side of {@code airlock pull} against bundles crafted the way a hostile sandbox could
 * make them, with real git repositories: only {@code refs/heads/airlock/*} and {@code
 * refs/airlock/*} ever change, only from a file the host checked is a bundle, all or nothing, and
 * no temporary ref outlives the pull.
 */
class BundleImportTest {
    private Path root;
    private Path host;
    private Path guest;
    private HostRepo repo;
    private String base;

    @BeforeEach
    void setUp() throws Exception {
        root = Files.createTempDirectory("bundle-import");
        host = root.resolve("host");
        git(root, "init", "-q", "-b", "main", host.toString());
        identity(host);
        Files.writeString(host.resolve("a.txt"), "alpha\n");
        git(host, "add", "-A");
        git(host, "commit", "-q", "-m", "base");
        base = git(host, "rev-parse", "HEAD").strip();
        // The sandbox's copy, as push makes it: a clone that then works on its own.
        guest = root.resolve("guest");
        git(root, "clone", "-q", host.toString(), guest.toString());
        identity(guest);
        Files.writeString(guest.resolve("b.txt"), "beta\n");
        git(guest, "add", "-A");
        git(guest, "commit", "-q", "-m", "sandbox work");
        repo = HostRepo.open(host);
    }

    @AfterEach
    void tearDown() {
        HostFiles.deleteTree(root);
    }

    private static void identity(Path r) {
        git(r, "config", "user.name", "Test");
        git(r, "config", "user.email", "test@example.com");
    }

    private Path bundle(String... revs) {
        Path file = root.resolve("sandbox-" + System.nanoTime() + ".bundle");
        List<String> args = new ArrayList<>(List.of("bundle", "create", "-q", file.toString()));
        args.addAll(List.of(revs));
        git(guest, args.toArray(String[]::new));
        return file;
    }

    private String refs() {
        return git(host, "for-each-ref", "--format=%(refname) %(objectname)");
    }

    @Test
    void theSandboxsCommitsArriveOnTheBranchAndNothingElse() throws Exception {
        BundleImport.Imported imported = BundleImport.apply(repo, bundle(base + "..HEAD"), base, "airlock/work");
        String head = git(guest, "rev-parse", "HEAD").strip();
        assertThat(imported).isEqualTo(new BundleImport.Imported(head, 1));
        assertThat(refs())
                .isEqualTo("refs/airlock/base/work " + base + "\nrefs/heads/airlock/work " + head + "\nrefs/heads/main "
                        + base + "\n");
    }

    @Test
    void tagsAndOtherRefsInTheBundleAreNotTaken() throws Exception {
        git(guest, "tag", "-a", "evil", "-m", "evil", "HEAD");
        git(guest, "tag", "light", "HEAD");
        Path file = bundle(base + "..HEAD", "refs/tags/evil", "refs/tags/light", "refs/heads/main");
        assertThat(GitBundle.read(file).references()).hasSize(4);
        BundleImport.apply(repo, file, base, "airlock/work");
        assertThat(git(host, "tag", "-l")).isEmpty();
        assertThat(git(host, "rev-parse", "main").strip()).isEqualTo(base);
        assertThat(refs()).doesNotContain("refs/tags").doesNotContain("refs/airlock/tmp");
    }

    @Test
    void aGitdirFileIsNotABundleAndNoOtherRepositoryIsRead() throws Exception {
        Path other = root.resolve("other");
        git(root, "init", "-q", "-b", "main", other.toString());
        identity(other);
        Files.writeString(other.resolve("secret.txt"), "secret\n");
        git(other, "add", "-A");
        git(other, "commit", "-q", "-m", "secret");
        String secret = git(other, "rev-parse", "HEAD").strip();
        Path file = root.resolve("gitdir.bundle");
        Files.writeString(file, "gitdir: " + other.resolve(".git") + "\n");
        String before = refs();
        assertThatThrownBy(() -> BundleImport.apply(repo, file, base, "airlock/work"))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("not a git bundle");
        assertThat(refs()).isEqualTo(before);
        assertThat(HostCommand.run(List.of("git", "-C", host.toString(), "cat-file", "-e", secret), null, null)
                        .ok())
                .isFalse();
    }

    @Test
    void damagedHeadersAreRefusedByTheHostItself() {
        for (String header : List.of(
                "# v2 git bundle\n",
                "# v2 git bundle\n" + "z".repeat(40) + " HEAD\n\nPACK",
                "# v2 git bundle\n" + "a".repeat(40) + " HEAD\n\nNOPE",
                "# v3 git bundle\n@filter=blob:none\n" + "a".repeat(40) + " HEAD\n\nPACK",
                "# v2 git bundle\n" + "a".repeat(40) + " refs/heads/x y\n\nPACK",
                "# v2 git bundle\n\nPACK")) {
            assertThatThrownBy(() -> GitBundle.parse(new ByteArrayInputStream(header.getBytes(StandardCharsets.UTF_8))))
                    .as(header)
                    .isInstanceOf(SandboxException.class)
                    .hasMessageContaining("not a git bundle");
        }
    }

    @Test
    void aHeadThatDoesNotDescendFromTheBaseChangesNothing() throws Exception {
        git(guest, "checkout", "-q", "--orphan", "rewritten");
        git(guest, "commit", "-q", "-m", "history rewritten");
        String before = refs();
        assertThatThrownBy(() -> BundleImport.apply(repo, bundle("HEAD"), base, "airlock/work"))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("do not descend from its base")
                .hasMessageContaining("nothing was changed");
        assertThat(refs()).isEqualTo(before);
    }

    @Test
    void aBranchThatMovedElsewhereIsReportedAndKept() throws Exception {
        String other = git(host, "commit-tree", "-p", base, "-m", "other", base + "^{tree}")
                .strip();
        git(host, "update-ref", "refs/heads/airlock/work", other);
        String before = refs();
        assertThatThrownBy(() -> BundleImport.apply(repo, bundle(base + "..HEAD"), base, "airlock/work"))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("has diverged");
        assertThat(refs()).isEqualTo(before);
    }

    @Test
    void onlyBranchesUnderAirlockAreWritten() {
        for (String branch : List.of("main", "feature/x", "airlock/", "airlock/bad..name")) {
            assertThatThrownBy(() -> BundleImport.branchRef(repo, branch))
                    .as(branch)
                    .isInstanceOf(SandboxException.class)
                    .hasMessageContaining("writes only branches under airlock/");
        }
    }

    @Test
    void temporaryRefsOfDeadProcessesAreRemovedAndLiveOnesKept() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        String dead = TempRefs.PREFIX + new ProcessStamp(gone.pid(), 1).text() + ".abc";
        String legacy = TempRefs.PREFIX + "0123456789ab";
        String live = TempRefs.create();
        for (String ref : List.of(dead, legacy, live)) {
            git(host, "update-ref", ref, base);
        }
        BundleImport.apply(repo, bundle(base + "..HEAD"), base, "airlock/work");
        assertThat(refs()).doesNotContain(dead).doesNotContain(legacy).contains(live);
        // A failed pull leaves no temporary ref of its own either.
        Path file = root.resolve("gitdir.bundle");
        Files.writeString(file, "gitdir: /nonexistent\n");
        assertThatThrownBy(() -> BundleImport.apply(repo, file, base, "airlock/work"))
                .isInstanceOf(SandboxException.class);
        git(guest, "checkout", "-q", "--orphan", "rewritten");
        git(guest, "commit", "-q", "-m", "history rewritten");
        assertThatThrownBy(() -> BundleImport.apply(repo, bundle("HEAD"), base, "airlock/work"))
                .isInstanceOf(SandboxException.class);
        assertThat(git(host, "for-each-ref", "--format=%(refname)", TempRefs.PREFIX))
                .isEqualTo(live + "\n");
    }

    /**
     * A pull that has answered has made the branch durable: a host crash right after it (the
     * page cache lost, the journal's last transaction not committed) keeps the branch and its
     * base ref, with their commits, and leaves no lock file in the repository. Before, git's
     * defaults fsynced neither the refs nor their directories: the branch came back as an empty
     * file ("ignoring broken ref", its commits dangling: lost once the sandbox is removed) or
     * not at all, beside a {@code .lock} file that failed the next pull.
     */
    @Test
    void aPulledBranchSurvivesAHostCrashRightAfterThePull() throws Exception {
        try (HostCrashDisk disk = HostCrashDisk.make(root, 64)) {
            Path onDisk = disk.root().resolve("host");
            git(root, "clone", "-q", host.toString(), onDisk.toString());
            disk.settle();
            String head = git(guest, "rev-parse", "HEAD").strip();

            BundleImport.apply(HostRepo.open(onDisk), bundle(base + "..HEAD"), base, "airlock/work");
            disk.crash();

            assertThat(git(onDisk, "rev-parse", "refs/heads/airlock/work").strip())
                    .isEqualTo(head);
            assertThat(git(onDisk, "rev-parse", "refs/airlock/base/work").strip())
                    .isEqualTo(base);
            assertThat(git(onDisk, "show", "-s", "--format=%s", "airlock/work").strip())
                    .isEqualTo("sandbox work");
            try (var walk = Files.walk(onDisk.resolve(".git"))) {
                assertThat(walk.filter(p -> p.toString().endsWith(".lock")).toList())
                        .isEmpty();
            }
            git(onDisk, "fsck", "--no-dangling");
        }
    }
}
