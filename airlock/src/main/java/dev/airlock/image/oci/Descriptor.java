package dev.airlock.image.oci;

import org.jspecify.annotations.Nullable;

/** An OCI content descriptor: what a manifest or index says about one blob it points at. */
public record Descriptor(
        String mediaType,
        String digest,
        long size,
        @Nullable Platform platform,
        boolean attestation) {}
