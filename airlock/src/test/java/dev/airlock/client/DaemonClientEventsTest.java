package dev.airlock.client;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.service.EventFeed;
import dev.airlock.service.SandboxEvent;
import dev.airlock.testing.Cli;
import dev.airlock.testing.ServedDaemon;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The client's event feed over the real daemon's {@code GET /v1/events}, read by the SDK's
 * stream reader into the service's own event type: a container sandbox's life as the CLI drives
 * it, in order, and a closed feed that says so.
 */
class DaemonClientEventsTest {
    @Test
    void theFeedFollowsASandboxsLifeAndEndsWhenClosed() throws Exception {
        try (ServedDaemon daemon = new ServedDaemon("client-events")) {
            DaemonClient client = DaemonClient.connect(daemon.dirs());
            EventFeed feed = client.events(null);
            try (feed) {
                Cli.Result run =
                        daemon.cli().run("run", "-d", "--runtime", "container", "--memory", "256m", "--name", "ev");
                assertThat(run.exit()).as(run.err()).isZero();
                Cli.Result rm = daemon.cli().run("rm", "-f", "ev");
                assertThat(rm.exit()).as(rm.err()).isZero();
                List<String> seen = new ArrayList<>();
                while (!seen.contains("removed")) {
                    SandboxEvent e = feed.next(Duration.ofSeconds(60));
                    if (e == null) {
                        throw new AssertionError("no event within 60 s; so far: " + seen);
                    }
                    assertThat(e.name()).isEqualTo("ev");
                    seen.add(e.type().equals("state") ? e.state().name() : e.type());
                }
                assertThat(seen).startsWith("created", "RUNNING").endsWith("removed");
                assertThat(feed.isOpen()).isTrue();
            }
            assertThat(feed.isOpen()).isFalse();
            assertThat(feed.next(Duration.ofSeconds(1))).isNull();
        }
    }
}
