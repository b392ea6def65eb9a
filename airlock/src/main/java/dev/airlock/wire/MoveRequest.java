package dev.airlock.wire;

/** {@code POST .../files/move}: rename {@code from} to {@code to} inside the sandbox. */
public record MoveRequest(String from, String to) {}
