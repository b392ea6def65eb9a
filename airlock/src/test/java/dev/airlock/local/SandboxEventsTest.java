package dev.airlock.local;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.EventFeed;
import dev.airlock.service.SandboxEvent;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The daemon's events compare each look's list in the order the lists were read. */
class SandboxEventsTest {
    private static Sandbox sandbox(SandboxState state) {
        return new Sandbox(
                "0123456789abcdef0123",
                "ev",
                "container",
                "base",
                "image-id",
                "image-file",
                "none",
                Resources.DEFAULT,
                Map.of(),
                null,
                Instant.EPOCH,
                state,
                0,
                null,
                null,
                false,
                null,
                List.of(),
                Map.of());
    }

    /**
     * A look that read the list while the sandbox still ran, and a look after its stop that
     * begins while the first is between its read and its comparison (as the SDK's events test
     * once saw: RUNNING, STOPPED, then RUNNING again): the stop is reported once, and last.
     */
    @Test
    void aListReadBeforeALaterLookIsComparedBeforeIt() throws Exception {
        SandboxEvents events = new SandboxEvents();
        EventFeed feed = events.subscribe(null, () -> List.of(sandbox(SandboxState.RUNNING)));
        Thread later = new Thread(() -> events.observe(() -> List.of(sandbox(SandboxState.STOPPED)), Set.of()));
        events.observe(
                () -> {
                    later.start();
                    // The later look either waits for this one's lock or (wrongly) runs to its end.
                    while (later.isAlive() && later.getState() != Thread.State.BLOCKED) {
                        Thread.onSpinWait();
                    }
                    return List.of(sandbox(SandboxState.RUNNING));
                },
                Set.of());
        later.join();
        SandboxEvent stopped = feed.next(Duration.ZERO);
        assertThat(stopped)
                .isNotNull()
                .extracting(SandboxEvent::state, SandboxEvent::previous)
                .containsExactly(SandboxState.STOPPED, SandboxState.RUNNING);
        assertThat(feed.next(Duration.ZERO)).as("no event after the stop").isNull();
    }
}
