#!/usr/bin/env bash
# One `airlock serve --listen` daemon: create -> first result through the Java SDK (TCP + token,
# unix socket) beside the e2b SDK on the same port and `airlock run --rm -- true`; HTTP streaming
# throughput (exec output, file download) through the SDK beside the mux socket; in one run.
# Flags: --creates 5 --reps 5 --mib 256 --runtime container --sdk DIR --out DIR (see --help).
# Needs root, node and npm (the e2b SDK is installed from npm unless --sdk names a copy).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench ApiBench "$@"
