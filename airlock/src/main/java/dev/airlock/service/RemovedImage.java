package dev.airlock.service;

/** An image name that {@link SandboxService#removeImage} removed, and the image it named. */
public record RemovedImage(String name, String id) {
    public String shortId() {
        return id.substring(0, Math.min(12, id.length()));
    }
}
