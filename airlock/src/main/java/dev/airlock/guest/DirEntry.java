package dev.airlock.guest;

/** One entry of a directory listing. */
public record DirEntry(String name, FileStat stat) {}
