package dev.airlock.wire;

import dev.airlock.service.ImageInfo;
import org.jspecify.annotations.Nullable;

/**
 * One line of the answer to {@code POST /v1/images/build} and {@code POST /v1/images/pull}, a
 * stream of JSON lines while the image is made: {@code step} (a message: a Dockerfile step, a
 * layer), {@code output} (what a RUN step printed, base64), then exactly one {@code done} (the
 * image) or {@code error}.
 */
public record ImageEvent(
        String type,
        @Nullable String message,
        @Nullable String data,
        @Nullable ImageInfo image,
        @Nullable ApiError error) {

    public static ImageEvent step(String message) {
        return new ImageEvent("step", message, null, null, null);
    }

    public static ImageEvent output(String base64) {
        return new ImageEvent("output", null, base64, null, null);
    }

    public static ImageEvent done(ImageInfo image) {
        return new ImageEvent("done", null, null, image, null);
    }

    public static ImageEvent failed(ApiError error) {
        return new ImageEvent("error", null, null, null, error);
    }
}
