package dev.airlock.service;

/** What a sandbox's inference bridge has carried: requests, throttled ones, body bytes each way. */
public record InferenceUsage(long requests, long throttled, long bytesIn, long bytesOut) {}
