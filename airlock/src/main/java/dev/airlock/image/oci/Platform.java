package dev.airlock.image.oci;

import dev.airlock.image.ImageException;

/** An image platform, {@code os/architecture[/variant]}; "" when there is no variant. */
public record Platform(String os, String architecture, String variant) {
    public static final Platform LINUX_AMD64 = new Platform("linux", "amd64", "");

    public static Platform parse(String text) {
        String[] p = text.split("/", -1);
        if (p.length < 2 || p.length > 3 || p[0].isEmpty() || p[1].isEmpty() || !text.matches("[a-z0-9/_.-]+")) {
            throw new ImageException("invalid --platform '" + text + "': use OS/ARCH[/VARIANT], e.g. linux/amd64");
        }
        return new Platform(p[0], p[1], p.length == 3 ? p[2] : "");
    }

    /**
     * Whether an image of {@code other} serves this platform: same os and architecture, and the
     * same variant when this one names one.
     */
    public boolean accepts(Platform other) {
        return os.equals(other.os)
                && architecture.equals(other.architecture)
                && (variant.isEmpty() || variant.equals(other.variant));
    }

    @Override
    public String toString() {
        return os + "/" + architecture + (variant.isEmpty() ? "" : "/" + variant);
    }
}
