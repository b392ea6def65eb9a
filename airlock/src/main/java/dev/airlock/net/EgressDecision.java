package dev.airlock.net;

import java.net.InetAddress;

/** What the egress policy says about one connection. */
public sealed interface EgressDecision {
    /** Connect to exactly this address (pinned: the name is not resolved again). */
    record Allow(InetAddress address, String why) implements EgressDecision {}

    record Deny(String reason) implements EgressDecision {}
}
