package dev.airlock.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Other users of the host are hostile too: they get nothing from the daemon, nothing from the
 * files of anyone's sandboxes, and no hold on the firewall lock. Each test plays such a user
 * for real ({@code nobody}, through {@code setpriv}) against the real CLI and daemon, with
 * container sandboxes. Before these fixes, nobody was served by the API once its socket's mode
 * let them connect, read a sandbox's environment and output from a data directory the CLI made
 * 0755, and, with a link at the firewall lock's path in /tmp, had root create a file anywhere.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OtherLocalUsersTest {
    private static final String NOBODY = "65534";

    private AirlockDirs dirs;
    private Cli cli;
    private Path scratch;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        scratch = Files.createTempDirectory("airlock-others");
        // Readable by everyone, as a home directory or /var/lib often is: only Airlock's own
        // modes can keep the data directory below it private. It does not exist yet, so Airlock
        // makes it, as on a first run.
        Files.setPosixFilePermissions(scratch, PosixFilePermissions.fromString("rwxr-xr-x"));
        AirlockDirs isolated = TestHost.isolated("others");
        dirs = new AirlockDirs(isolated.home(), isolated.cache(), scratch.resolve("data"), isolated.runtime());
        cli = new Cli(dirs).inRuntime("container");
    }

    @AfterAll
    void tearDown() {
        for (String name : cli.run("ps", "-a", "-q").out().lines().toList()) {
            cli.run("rm", "-f", name);
        }
        TestHost.cleanUp(dirs);
        HostFiles.deleteTree(scratch);
    }

    private static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as(r.err()).isZero();
        return r;
    }

    /** Runs a command as nobody, with no groups. */
    private static HostCommand.Result asNobody(List<String> argv) {
        List<String> full =
                new ArrayList<>(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "--"));
        full.addAll(argv);
        return HostCommand.run(full, null, null);
    }

    private void restartDaemon(Map<String, String> env) {
        cli.killDaemon();
        ok(cli.run(env, new byte[0], "ps"));
    }

    @Test
    void theApiServesOnlyItsOwnUserAndRootWhateverTheSocketsModeSays() throws Exception {
        ok(cli.run("ps"));
        Path socket = dirs.runtime().resolve("airlockd.sock");
        // As if the modes were widened (by hand, an ACL, a shared runtime directory): the
        // filesystem no longer stops nobody, so only the daemon's own check can.
        Files.setPosixFilePermissions(dirs.runtime(), PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
        try {
            List<String> curl = List.of(
                    "curl",
                    "-sS",
                    "-w",
                    "\n%{http_code}",
                    "--unix-socket",
                    socket.toString(),
                    "http://localhost/v1/sandboxes");
            HostCommand.Result other = asNobody(curl);
            assertThat(other.output().strip())
                    .as("nobody's request")
                    .endsWith("403")
                    .contains("serves only its own user and root, not nobody")
                    .contains("FORBIDDEN");
            HostCommand.Result own = HostCommand.run(curl, null, null);
            assertThat(own.output().strip()).as("the owner's request").endsWith("200");
            assertThat(Files.readString(dirs.data().resolve("airlockd.log")))
                    .contains("refused an API client running as user nobody");
        } finally {
            Files.setPosixFilePermissions(dirs.runtime(), PosixFilePermissions.fromString("rwx------"));
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        }
    }

    @Test
    void nobodyCanReadTheFilesOfASandbox() throws Exception {
        ok(cli.run(
                Map.of("TOKEN", "the-secret-value"),
                new byte[0],
                "run",
                "-d",
                "--name",
                "private",
                "-e",
                "PASSWORD=hunter2",
                "--allow-host",
                "example.com",
                "--secret",
                "TOKEN@example.com"));
        ok(cli.run("exec", "private", "--", "sh", "-c", "echo console line > /proc/1/fd/2"));
        ok(cli.run("stop", "private"));
        ok(cli.run("start", "private"));

        Path data = dirs.data();
        List<Path> dirsMade = new ArrayList<>();
        List<Path> files = new ArrayList<>();
        Files.walkFileTree(data, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs) {
                if (isGuestTree(data.relativize(d))) {
                    return FileVisitResult.SKIP_SUBTREE;
                }
                dirsMade.add(d);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) {
                if (attrs.isRegularFile()) {
                    files.add(f);
                }
                return FileVisitResult.CONTINUE;
            }
        });
        List<String> open = new ArrayList<>();
        for (Path d : dirsMade) {
            String mode = mode(d);
            // The one exception: container root (an unprivileged host uid in its user namespace)
            // must pass through a container's bundle to its root, so the bundle may be entered,
            // never listed, and only inside the owner-only container directory.
            boolean bundlePassage = d.getFileName().toString().equals("bundle")
                    && mode.equals("rwx--x--x")
                    && mode(java.util.Objects.requireNonNull(d.getParent())).endsWith("------");
            if (!mode.endsWith("------") && !bundlePassage) {
                open.add(d + " " + mode);
            }
        }
        assertThat(open)
                .as("directories of the data directory others can enter")
                .isEmpty();
        Path sandboxes = data.resolve("sandboxes");
        Path sandbox = sandboxes.resolve(onlyChild(sandboxes));
        assertThat(Files.readString(sandbox.resolve("sandbox.json"))).contains("hunter2");
        for (String f : List.of(
                "sandbox.json",
                "secrets.json",
                "interception-ca.key",
                "container/container.log",
                "container/bundle/config.json")) {
            Path p = sandbox.resolve(f);
            assertThat(p).as(f).exists();
            assertThat(mode(p)).as(f).isEqualTo("rw-------");
        }
        assertThat(Files.readString(sandbox.resolve("container/container.log"))).contains("console line");

        // And the proof: nobody tries to read every file Airlock made, and every directory too.
        List<String> script = new ArrayList<>(List.of(
                "sh",
                "-c",
                "for f in \"$@\"; do if [ -d \"$f\" ]; then ls \"$f\" >/dev/null 2>&1 && echo \"$f\";"
                        + " else head -c1 \"$f\" >/dev/null 2>&1 && echo \"$f\"; fi; done",
                "sh"));
        files.forEach(f -> script.add(f.toString()));
        dirsMade.forEach(d -> script.add(d.toString()));
        HostCommand.Result read = asNobody(script);
        assertThat(read.output().strip()).as("what nobody could read").isEmpty();
        assertThat(files).as("the files tried").hasSizeGreaterThan(5);
    }

    @Test
    void theFirewallLockIsOutOfOtherUsersReach() throws Exception {
        // Another user's link where the lock used to be (the daemon's temporary directory, /tmp
        // by default; a private sticky one here, so the test never touches the real /tmp):
        Path tmp = Files.createDirectory(scratch.resolve("tmp"));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
        HostCommand.run(List.of("chmod", "+t", tmp.toString()), null, null);
        Path victim = scratch.resolve("created-by-root");
        assertThat(asNobody(List.of(
                                "ln",
                                "-s",
                                victim.toString(),
                                tmp.resolve("airlock-nat-firewall.lock").toString()))
                        .ok())
                .isTrue();
        restartDaemon(Map.of("JAVA_TOOL_OPTIONS", "-Djava.io.tmpdir=" + tmp));

        Cli.Result r = cli.run(
                Map.of("JAVA_TOOL_OPTIONS", "-Djava.io.tmpdir=" + tmp),
                new byte[0],
                "run",
                "--rm",
                "--network",
                "nat",
                "--allow-host",
                "127.0.0.1",
                "--",
                "true");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(victim).as("a file root made through the other user's link").doesNotExist();
        Path locks = Path.of("/run/airlock");
        assertThat(mode(locks)).isEqualTo("rwx------");
        assertThat((Integer) Files.getAttribute(locks, "unix:uid", LinkOption.NOFOLLOW_LINKS))
                .isZero();
        assertThat(locks.resolve("nat-firewall.lock")).exists();
        restartDaemon(Map.of());
    }

    /**
     * A container's root, overlay layers and work directory: the guest's own tree, whose modes
     * are the guest's (its / is 0755, its /tmp 1777), closed off by the directories above it.
     */
    private static boolean isGuestTree(Path rel) {
        String r = rel.toString().replace('\\', '/');
        return r.endsWith("container/upper")
                || r.endsWith("container/work")
                || r.endsWith("container/disk/upper")
                || r.endsWith("container/disk/work")
                || r.endsWith("container/bundle/rootfs");
    }

    private static String onlyChild(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> all = s.filter(Files::isDirectory).toList();
            assertThat(all).hasSize(1);
            return all.getFirst().getFileName().toString();
        }
    }

    private static String mode(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }
}
