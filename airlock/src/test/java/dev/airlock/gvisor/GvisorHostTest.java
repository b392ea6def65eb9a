package dev.airlock.gvisor;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The gVisor runtime on this host as a user meets it through the CLI: what doctor says about
 * each runtime, which one is the default and how to override it, and the bad cases: runsc
 * missing, runsc failing its own start, a platform that does not work here (stand-ins: runsc
 * scripts named by AIRLOCK_RUNSC, since this host's runsc works).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GvisorHostTest {
    private AirlockDirs dirs;
    private Cli cli;
    private Path scripts;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("gvisor-host");
        cli = new Cli(dirs);
        scripts = Files.createTempDirectory("airlock-runsc-stand-ins");
    }

    @AfterAll
    void tearDown() {
        for (String n : new String[] {"plain", "chosen", "fallback", "ws"}) {
            cli.run("rm", "-f", n);
        }
        TestHost.cleanUp(dirs);
        dev.airlock.host.HostFiles.deleteTree(scripts);
    }

    private Path script(String name, String body) throws Exception {
        Path p = scripts.resolve(name);
        Files.writeString(p, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }

    private static void cleanError(Cli.Result r, String... words) {
        assertThat(r.exit()).as(r.err()).isEqualTo(125);
        assertThat(r.err()).contains(words).doesNotContain("Exception").doesNotContain("\tat ");
    }

    @Test
    void doctorPrintsOneLinePerRuntimeAndTheDefaultFollowsTheHost() {
        Cli.Result r = cli.run("doctor");
        assertThat(r.out())
                .containsPattern("(?m)^microvm +(hardware virtualization|software emulation) +yes")
                .containsPattern("(?m)^gvisor +user-space kernel +yes +[0-9]+ ms .*runsc do true, (systrap|ptrace|kvm)")
                .containsPattern("(?m)^container +namespaces +yes +[0-9]+ ms");
        // this host: KVM does not run a guest (PVM), runsc works, so gVisor is the default
        assertThat(r.out()).contains("default runtime: gvisor (user-space kernel)");
    }

    @Test
    void aSandboxSaysWhichRuntimeAndBoundaryItHasAndTheDefaultCanBeOverridden() {
        assertThat(cli.run("create", "--name", "plain").exit()).isZero();
        String plain = cli.run("inspect", "plain").out();
        assertThat(plain)
                .containsPattern("\"runtime\" ?: \"gvisor\"")
                .containsPattern("\"isolation\" ?: \"user-space kernel \\(gVisor");
        Cli.Result chosen = cli.run(Map.of("AIRLOCK_RUNTIME", "container"), new byte[0], "create", "--name", "chosen");
        assertThat(chosen.exit()).as(chosen.err()).isZero();
        assertThat(cli.run("inspect", "chosen").out())
                .containsPattern("\"runtime\" ?: \"container\"")
                .containsPattern("\"isolation\" ?: \"namespaces");
    }

    @Test
    void aProjectsAirlockTomlChoosesTheRuntimeOfItsWorkspaces() throws Exception {
        Path repo = Files.createTempDirectory("airlock-toml-runtime");
        Files.writeString(repo.resolve("airlock.toml"), "[sandbox]\nruntime = \"container\"\n");
        for (String[] git : new String[][] {
            {"git", "init", "-q"},
            {"git", "add", "."},
            {"git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"}
        }) {
            assertThat(new ProcessBuilder(git).directory(repo.toFile()).start().waitFor())
                    .isZero();
        }
        Cli.Result r = cli.run("create", "--name", "ws", "--workspace", repo.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(cli.run("inspect", "ws").out()).containsPattern("\"runtime\" ?: \"container\"");
        dev.airlock.host.HostFiles.deleteTree(repo);
    }

    @Test
    void runscMissingIsAClearErrorNamingTheOtherRuntimes() {
        Cli.Result r = cli.run(
                Map.of("AIRLOCK_RUNSC", scripts.resolve("no-such-runsc").toString()),
                new byte[0],
                "run",
                "--rm",
                "--runtime",
                "gvisor",
                "--",
                "true");
        cleanError(r, "the gvisor runtime cannot run here", "AIRLOCK_RUNSC=", "--runtime container");
    }

    @Test
    void runscFailingItsOwnStartIsAClearErrorWithItsMessage() throws Exception {
        Path broken =
                script("runsc-broken", "echo 'creating container: cannot set up the sandbox (stand-in)' >&2; exit 1");
        Cli.Result r = cli.run(
                Map.of("AIRLOCK_RUNSC", broken.toString()),
                new byte[0],
                "run",
                "--rm",
                "--runtime",
                "gvisor",
                "--",
                "true");
        cleanError(
                r,
                "cannot start a sandbox here",
                "systrap does not: exit 1: creating container: cannot set up the sandbox (stand-in)",
                "ptrace does not",
                "--runtime container");
    }

    @Test
    void aPlatformThatDoesNotWorkHereFallsBackAndSaysSo() throws Exception {
        // runsc itself, except that its kvm platform fails as it does where KVM cannot run it
        Path runsc = dev.airlock.oci.OciRuntime.onPath("runsc").orElseThrow();
        Path noKvm = script(
                "runsc-no-kvm",
                "for a in \"$@\"; do [ \"$a\" = --platform=kvm ] && { echo 'kvm: no usable KVM (stand-in)' >&2; exit 1; }; done\n"
                        + "exec " + runsc + " \"$@\"");
        Map<String, String> env = Map.of("AIRLOCK_RUNSC", noKvm.toString(), "AIRLOCK_GVISOR_PLATFORM", "kvm");
        Cli.Result r = cli.run(env, new byte[0], "run", "--name", "fallback", "--runtime", "gvisor", "--", "true");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("gVisor's kvm platform does not work here; using systrap");
        assertThat(cli.run("inspect", "fallback").out()).contains("systrap");
    }
}
