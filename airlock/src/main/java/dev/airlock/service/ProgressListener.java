package dev.airlock.service;

/**
 * What long work (a workspace's setup) tells the client while it runs: steps in words, and the
 * output of the commands it runs. A front end shows them as they come (the CLI on stderr, the
 * HTTP API as events).
 */
public interface ProgressListener {
    void step(String message);

    void output(byte[] bytes);

    ProgressListener NONE = new ProgressListener() {
        @Override
        public void step(String message) {}

        @Override
        public void output(byte[] bytes) {}
    };
}
