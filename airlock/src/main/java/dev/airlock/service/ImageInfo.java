package dev.airlock.service;

/** An image a build or pull stored: its name (its id when unnamed), id and erofs size. */
public record ImageInfo(String name, String id, long sizeBytes) {}
