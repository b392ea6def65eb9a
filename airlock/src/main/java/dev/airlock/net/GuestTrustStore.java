package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import dev.airlock.guest.GuestLimitException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;

/**
 * Adds CA certificates to a guest's trust store the way Debian keeps local CAs: each in its own
 * file under {@code /usr/local/share/ca-certificates} (so a later {@code update-ca-certificates}
 * in the guest keeps it) and appended to the system bundle that OpenSSL, curl, git and Python
 * read. Used for the sandbox's interception CA and for the host's extra CAs alike.
 */
final class GuestTrustStore {
    private GuestTrustStore() {}

    /**
     * Writes each of {@code files} (guest path to PEM text) and appends the PEMs the bundle lacks,
     * in one read and at most one write of the bundle. Idempotent.
     *
     * <p>The guest serves the bundle and may be hostile: every agent call has a deadline and the
     * bundle a size cap, so a never-ending or huge file fails the install with a {@link
     * GuestLimitException} instead of hanging or exhausting the daemon.
     *
     * @param what what is being added, for the error message ("the sandbox CA")
     */
    static void add(
            GuestChannel guest,
            Map<String, String> files,
            String bundlePath,
            long maxBundle,
            Duration timeout,
            String what)
            throws IOException, InterruptedException {
        for (Map.Entry<String, String> f : files.entrySet()) {
            guest.writeFile(
                    f.getKey(),
                    new ByteArrayInputStream(f.getValue().getBytes(StandardCharsets.US_ASCII)),
                    0644,
                    true,
                    timeout);
        }
        ByteArrayOutputStream bundle = new ByteArrayOutputStream();
        try {
            guest.readFile(bundlePath, bundle, maxBundle, timeout);
        } catch (GuestException e) {
            if (e.errno() != GuestException.ENOENT) {
                throw e;
            }
        } catch (GuestLimitException e) {
            throw new GuestLimitException(
                    e,
                    "cannot add " + what + " to the guest's " + bundlePath + ": " + e.getMessage()
                            + "; the guest's own trust store is too large or does not answer");
        }
        String text = bundle.toString(StandardCharsets.US_ASCII);
        StringBuilder updated = new StringBuilder(text);
        for (String pem : files.values()) {
            if (!text.contains(pem)) {
                if (!updated.isEmpty() && updated.charAt(updated.length() - 1) != '\n') {
                    updated.append('\n');
                }
                updated.append(pem);
            }
        }
        if (updated.length() != text.length()) {
            guest.writeFile(
                    bundlePath,
                    new ByteArrayInputStream(updated.toString().getBytes(StandardCharsets.US_ASCII)),
                    0644,
                    true,
                    timeout);
        }
    }
}
