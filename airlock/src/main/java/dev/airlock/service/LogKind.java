package dev.airlock.service;

/** Which of a sandbox's logs: its console (kernel and agent) or its egress decisions. */
public enum LogKind {
    CONSOLE,
    EGRESS
}
