/**
 * The Airlock Java SDK: create sandboxes, run commands with streamed output, move files, open
 * terminals, fork, pause and resume, over the daemon's HTTP API (its unix socket, or TCP with the
 * token). Start at {@link dev.airlock.sdk.Airlock}.
 */
@NullMarked
package dev.airlock.sdk;

import org.jspecify.annotations.NullMarked;
