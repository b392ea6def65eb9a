package dev.airlock.build;

import dev.airlock.sandbox.SandboxException;

/**
 * An image build that cannot go on: a bad Dockerfile or context (the user's to fix: the message
 * names the file, line and what to do), or a step that failed in its sandbox ({@link #stepFailed}:
 * a RUN's exit status, whose output the user has seen).
 */
public final class BuildException extends SandboxException {
    private static final long serialVersionUID = 1L;

    private final boolean stepFailed;

    public BuildException(String message) {
        super(Kind.INVALID, message);
        this.stepFailed = false;
    }

    private BuildException(String message, boolean stepFailed) {
        super(Kind.FAILED, message);
        this.stepFailed = stepFailed;
    }

    public BuildException(String message, Throwable cause) {
        super(Kind.FAILED, message, cause);
        this.stepFailed = false;
    }

    /** A step whose command failed in the sandbox: a build error, not Airlock's (docker build exits 1). */
    static BuildException stepFailed(String message) {
        return new BuildException(message, true);
    }

    public boolean stepFailed() {
        return stepFailed;
    }
}
