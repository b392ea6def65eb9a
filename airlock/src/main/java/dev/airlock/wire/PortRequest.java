package dev.airlock.wire;

/** {@code POST /v1/sandboxes/{ref}/ports}: {@code [HOSTIP:]HOSTPORT:GUESTPORT}. */
public record PortRequest(String publish) {}
