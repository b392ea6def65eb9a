package dev.airlock.service;

import org.jspecify.annotations.Nullable;

/**
 * The outcome of a pull.
 *
 * @param head the branch's new head, or null when the sandbox had no commits to bring
 * @param commits how many commits came
 * @param uncommittedLeft changes still uncommitted in the sandbox
 */
public record PullResult(
        String branch, String base, @Nullable String head, int commits, int uncommittedLeft) {}
