package dev.airlock.workspace;

import dev.airlock.host.ProcessStamp;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Optional;

/**
 * Temporary refs under {@value #PREFIX} that keep objects alive while a push or pull works. Each
 * name starts with the stamp of the process that made it, so whoever comes next removes the ones
 * a dead process left (a crash, a kill -9) and never those of a push or pull still running.
 */
final class TempRefs {
    static final String PREFIX = "refs/airlock/tmp/";

    private TempRefs() {}

    /** A fresh name: {@code refs/airlock/tmp/PID.START.RANDOM}. */
    static String create() {
        return PREFIX + ProcessStamp.current().text() + "."
                + HexFormat.of().formatHex(new SecureRandom().generateSeed(6));
    }

    /** Deletes the temporary refs of processes that are gone; returns how many went. */
    static int removeLeftovers(HostRepo repo) {
        var refs = repo.tryGit("for-each-ref", "--format=%(refname)", PREFIX);
        if (!refs.ok()) {
            return 0;
        }
        int removed = 0;
        for (String ref : refs.output().lines().toList()) {
            Optional<ProcessStamp> owner = ProcessStamp.parse(ref.substring(PREFIX.length()));
            // A name without a stamp is from an Airlock before stamps: its process is long gone.
            if (owner.map(ProcessStamp::isAlive).orElse(false)) {
                continue;
            }
            if (repo.tryGit("update-ref", "-d", ref).ok()) {
                removed++;
            }
        }
        return removed;
    }

    /** Deletes {@code ref} if it is there; a failure here must not hide the error that got us here. */
    static void delete(HostRepo repo, String ref) {
        repo.tryGit("update-ref", "-d", ref);
    }
}
