package dev.airlock.workspace;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.guest.FrameType;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.HostileAgent;
import dev.airlock.host.HostCommand;
import dev.airlock.sandbox.SandboxException;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every workspace step the host runs in a sandbox on its own has a deadline and a size cap. The
 * guest is a FAKE here, {@link HostileAgent}, the one way to put the host in front of a guest
 * whose commands never end or never stop printing; the bounds are made small so the test does not
 * wait ten minutes for the real ones. Before the bounds, each of these calls waited forever (the
 * silent guest) or buffered everything (the flooding one): the tests' own timeout failed them.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WorkspaceGuestBoundsTest {
    private static final Workspace.Bounds SMALL = new Workspace.Bounds(
            Duration.ofSeconds(1),
            64 << 10,
            Duration.ofSeconds(1),
            1 << 20,
            Duration.ofSeconds(1),
            1 << 20,
            Duration.ofSeconds(1));
    private static final String BASE = "0".repeat(40);

    private final AtomicLong printed = new AtomicLong();
    private final Set<FrameType> heard = ConcurrentHashMap.newKeySet();
    private final CountDownLatch gaveUp = new CountDownLatch(1);
    private @Nullable HostileAgent fake;

    private GuestChannel hostile(Path dir, boolean floods) throws Exception {
        HostileAgent f = new HostileAgent(dir);
        fake = f;
        f.serveOne(true, HostileAgent.execsForever(floods, printed, heard, gaveUp));
        return GuestChannel.open(f.connect(), Duration.ofSeconds(5));
    }

    @AfterEach
    void closeFake() throws Exception {
        if (fake != null) {
            fake.close();
        }
    }

    private static HostRepo repo(Path dir) throws Exception {
        Path r = Files.createDirectories(dir.resolve("repo"));
        for (List<String> argv : List.of(
                List.of("git", "init", "-q", "-b", "main"),
                List.of(
                        "git",
                        "-c",
                        "user.name=t",
                        "-c",
                        "user.email=t@example.com",
                        "commit",
                        "-q",
                        "--allow-empty",
                        "-m",
                        "first"))) {
            assertThat(HostCommand.run(argv, r, null).ok()).isTrue();
        }
        return HostRepo.open(r);
    }

    /** The error names the bound the guest hit. */
    private static void assertStopped(Throwable e, String bound) {
        assertThat(e).isInstanceOf(SandboxException.class).hasMessageContaining(bound);
    }

    /** The host killed the guest's process and gave up its stream (as the fake saw it). */
    private void assertTheCommandWasKilled() throws Exception {
        assertThat(gaveUp.await(10, TimeUnit.SECONDS))
                .as("the host gave the command up")
                .isTrue();
        assertThat(heard).as("the host's frames on the command's stream").contains(FrameType.SIGNAL, FrameType.ERROR);
    }

    @Test
    void aPushWhoseUnpackNeverEndsStopsAtItsDeadline(@TempDir Path dir) throws Exception {
        HostRepo repo = repo(dir);
        try (GuestChannel ch = hostile(dir, false)) {
            assertThatThrownBy(() -> Workspace.push(ch, repo, false, SMALL))
                    .satisfies(e -> assertStopped(e, "within 1 s"))
                    .hasMessageContaining("unpack the workspace");
            assertTheCommandWasKilled();
        }
    }

    @Test
    void aPullWhoseScriptPrintsWithoutEndStopsAtItsCap(@TempDir Path dir) throws Exception {
        HostRepo repo = repo(dir);
        try (GuestChannel ch = hostile(dir, true)) {
            assertThatThrownBy(() -> Workspace.pull(ch, repo, BASE, "airlock/x", false, "m", SMALL))
                    .satisfies(e -> assertStopped(e, "more than 65536 bytes"));
            assertTheCommandWasKilled();
        }
        // What the host took is bounded by the cap plus the flow-control windows in flight.
        assertThat(printed.get()).isLessThan((64 << 10) + 4 * (256 << 10));
        assertThat(HostCommand.run(List.of("git", "branch", "--list", "airlock/*"), repo.root(), null)
                        .output())
                .isEmpty();
    }

    @Test
    void aPullWhoseScriptNeverAnswersStopsAtItsDeadline(@TempDir Path dir) throws Exception {
        HostRepo repo = repo(dir);
        try (GuestChannel ch = hostile(dir, false)) {
            assertThatThrownBy(() -> Workspace.pull(ch, repo, BASE, "airlock/x", false, "m", SMALL))
                    .satisfies(e -> assertStopped(e, "within 1 s"));
            assertTheCommandWasKilled();
        }
    }

    @Test
    void aDiffStreamsAtMostItsCapToTheClient(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream client = new ByteArrayOutputStream();
        try (GuestChannel ch = hostile(dir, true)) {
            assertThatThrownBy(() -> Workspace.diff(ch, BASE, client, SMALL))
                    .satisfies(e -> assertStopped(e, "more than 1048576 bytes"))
                    .hasMessageContaining("the diff was cut short");
            assertTheCommandWasKilled();
        }
        assertThat(client.size()).isEqualTo(1 << 20);
    }

    @Test
    void aDiffThatNeverEndsStopsAtItsDeadline(@TempDir Path dir) throws Exception {
        try (GuestChannel ch = hostile(dir, false)) {
            assertThatThrownBy(() -> Workspace.diff(ch, BASE, OutputStream.nullOutputStream(), SMALL))
                    .satisfies(e -> assertStopped(e, "within 1 s"));
            assertTheCommandWasKilled();
        }
    }

    @Test
    void setupOutputIsCappedAcrossItsCommands(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream client = new ByteArrayOutputStream();
        try (GuestChannel ch = hostile(dir, true)) {
            assertThatThrownBy(() -> Workspace.setup(ch, List.of("make deps"), client, client, SMALL))
                    .satisfies(e -> assertStopped(e, "printed more than 1048576 bytes together"))
                    .hasMessageContaining("make deps");
            assertTheCommandWasKilled();
        }
        assertThat(client.size()).isEqualTo(1 << 20);
    }

    @Test
    void aSetupCommandThatNeverEndsStopsAtItsDeadline(@TempDir Path dir) throws Exception {
        try (GuestChannel ch = hostile(dir, false)) {
            assertThatThrownBy(() -> Workspace.setup(
                            ch,
                            List.of("sleep infinity"),
                            OutputStream.nullOutputStream(),
                            OutputStream.nullOutputStream(),
                            SMALL))
                    .satisfies(e -> assertStopped(e, "within 1 s"));
            assertTheCommandWasKilled();
        }
    }
}
