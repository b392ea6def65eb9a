#!/usr/bin/env bash
# The CLI as a person types it: `airlock exec NAME -- true` on a container sandbox and
# `airlock ps`, each a new JVM, beside `podman exec` in a running container, and the same exec
# through the Java SDK from a warm JVM (one HTTP request each), in one run.
# Flags: --n 20 --warmup 3 --jar JAR --before-jar OLDJAR --out DIR (see --help). Needs root and podman.
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench CliBench "$@"
