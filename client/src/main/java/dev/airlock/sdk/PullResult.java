package dev.airlock.sdk;

import org.jspecify.annotations.Nullable;

/**
 * What a workspace pull brought into the host repository.
 *
 * @param branch the branch that now holds the sandbox's commits
 * @param base the commit the sandbox started from
 * @param head the branch's new head, or null when there was nothing to bring
 * @param commits how many commits came
 * @param uncommittedLeft uncommitted changes left in the sandbox (not pulled)
 */
public record PullResult(
        String branch, String base, @Nullable String head, int commits, int uncommittedLeft) {}
