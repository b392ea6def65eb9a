package dev.airlock.service;

import org.jspecify.annotations.Nullable;

/**
 * An image pull ({@code POST /v1/images/pull}) with the daemon's registry logins
 * ({@code ~/.docker/config.json}, {@code auth.json} of the user it runs as).
 *
 * @param reference {@code [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST]}
 * @param name the name to store it under (default: the reference)
 * @param platform {@code OS/ARCH[/VARIANT]} (default: linux/amd64)
 * @param insecure allow plain HTTP to this registry (loopback registries always are)
 */
public record ImagePullSpec(
        String reference, @Nullable String name, @Nullable String platform, boolean insecure) {}
