/**
 * The SDK's transport: just enough HTTP/1.1 for the daemon's API ({@link
 * dev.airlock.sdk.http.DaemonHttp}) and its server-sent events ({@link
 * dev.airlock.sdk.http.EventStreamReader}). The Airlock CLI talks to its daemon through the same
 * classes, so they use the JDK alone: a short command must not pay for loading a JSON data binder
 * or an HTTP library. Programs use {@link dev.airlock.sdk.Airlock}, not this package.
 */
@NullMarked
package dev.airlock.sdk.http;

import org.jspecify.annotations.NullMarked;
