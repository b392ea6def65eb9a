package dev.airlock.net;

/**
 * A token bucket: holds at most {@code capacity} tokens and gains {@code capacity} per
 * {@code periodNanos}, continuously. A burst may use the whole capacity at once.
 */
public final class TokenBucket {
    private final double capacity;
    private final double perNano;
    private double tokens;
    private long last;

    public TokenBucket(long capacity, long periodNanos, long now) {
        this.capacity = capacity;
        this.perNano = (double) capacity / periodNanos;
        this.tokens = capacity;
        this.last = now;
    }

    /** Takes {@code n} tokens if there are that many; else takes none. */
    public synchronized boolean tryTake(long n, long now) {
        refill(now);
        if (tokens < n) {
            return false;
        }
        tokens -= n;
        return true;
    }

    /** Takes up to {@code n} tokens (going below zero is allowed: a response already on its way is not cut). */
    public synchronized void take(long n, long now) {
        refill(now);
        tokens -= n;
    }

    /** Nanoseconds until one token is there. */
    public synchronized long nanosUntilOne(long now) {
        refill(now);
        return tokens >= 1 ? 0 : (long) Math.ceil((1 - tokens) / perNano);
    }

    private void refill(long now) {
        tokens = Math.min(capacity, tokens + (now - last) * perNano);
        last = now;
    }
}
