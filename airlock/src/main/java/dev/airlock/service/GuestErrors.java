package dev.airlock.service;

import dev.airlock.guest.GuestException;
import dev.airlock.sandbox.SandboxException;

/**
 * What an agent's errno means to a client: a missing path is {@code NOT_FOUND}, a path in the
 * way {@code CONFLICT}, a full disk {@code TOO_LARGE}, a request the guest cannot do (a
 * directory read as a file, permission denied, a user the sandbox lacks) {@code INVALID}; anything
 * else {@code FAILED}.
 */
public final class GuestErrors {
    private GuestErrors() {}

    public static SandboxException of(GuestException e) {
        String message = String.valueOf(e.getMessage());
        SandboxException.Kind kind = switch (e.errno()) {
            case 2 -> SandboxException.Kind.NOT_FOUND; // ENOENT
            case 17, 39, 16 -> SandboxException.Kind.CONFLICT; // EEXIST, ENOTEMPTY, EBUSY
            case 28, 27, 122 -> SandboxException.Kind.TOO_LARGE; // ENOSPC, EFBIG, EDQUOT
            case 1, 13, 20, 21, 22, 18, 36, 40, 30, 95, 7 ->
                SandboxException.Kind.INVALID; // EPERM EACCES ENOTDIR EISDIR EINVAL EXDEV ENAMETOOLONG ELOOP EROFS
            // EOPNOTSUPP E2BIG
            default -> SandboxException.Kind.FAILED;
        };
        if (e.errno() == 3) {
            // ESRCH: the agent's answer to a user or group the sandbox does not have, which is the
            // request's fault (400), not the guest's; its message says it, the errno number does not
            return new SandboxException(SandboxException.Kind.INVALID, e.agentMessage(), e);
        }
        if (e.errno() == 18) {
            message += " (a move across file systems: copy the file, then remove it)";
        }
        return new SandboxException(kind, message, e);
    }
}
