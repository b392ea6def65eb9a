package dev.airlock.image;

import java.util.List;

/**
 * Where a pulled or imported image came from and what it is made of: the reference or file it
 * was read from, its manifest and config digests, its platform, and its layers bottom first (each
 * kept in the store by digest, shared with every other image that has it).
 */
public record ImageSource(
        String kind,
        String reference,
        String manifestDigest,
        String configDigest,
        String platform,
        List<Layer> layers) {
    public static final String PULL = "pull";
    public static final String IMPORT = "import";
    /** Built from a Dockerfile; the reference is how to build it again ({@code -f FILE -t NAME DIR}). */
    public static final String BUILD = "build";

    public ImageSource {
        layers = List.copyOf(layers);
    }

    /** One layer: the digest of its blob as stored (compressed or not), of its tar, its blob size. */
    public record Layer(String digest, String diffId, long size, String mediaType) {}
}
