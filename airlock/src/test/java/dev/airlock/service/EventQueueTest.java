package dev.airlock.service;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.sandbox.SandboxState;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class EventQueueTest {
    private static SandboxEvent event(long seq) {
        return new SandboxEvent(seq, "created", "id" + seq, "box" + seq, SandboxState.CREATED, null, Instant.now());
    }

    @Test
    void aSubscriberThatFallsTheLimitBehindLosesTheFeedButGetsWhatWasQueued() throws Exception {
        EventQueue q = new EventQueue(2);
        assertThat(q.offer(event(1))).isTrue();
        assertThat(q.offer(event(2))).isTrue();
        assertThat(q.offer(event(3))).as("over the limit").isFalse();
        assertThat(q.offer(event(4))).as("the feed has ended").isFalse();
        assertThat(q.isOpen()).as("two still queued").isTrue();
        assertThat(q.next(Duration.ofSeconds(5))).extracting(SandboxEvent::seq).isEqualTo(1L);
        assertThat(q.next(Duration.ofSeconds(5))).extracting(SandboxEvent::seq).isEqualTo(2L);
        assertThat(q.isOpen()).isFalse();
        // ended and empty: no wait
        assertThat(q.next(Duration.ofDays(1))).isNull();
    }

    @Test
    void anEndedFeedHandsOutWhatWasQueuedAndThenNothing() throws Exception {
        EventQueue q = new EventQueue(10);
        q.offer(event(1));
        q.end();
        assertThat(q.isOpen()).isTrue();
        assertThat(q.next(Duration.ofDays(1))).extracting(SandboxEvent::seq).isEqualTo(1L);
        assertThat(q.next(Duration.ofDays(1))).isNull();
        assertThat(q.isOpen()).isFalse();
    }
}
