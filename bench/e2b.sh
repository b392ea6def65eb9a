#!/usr/bin/env bash
# The e2b SDK against `airlock e2b`: commands.run('true') round trips beside `podman exec`, and
# create -> first command result beside `airlock run --rm -- true`, in one run.
# Flags: --n 50 --warmup 5 --creates 5 --runtime container|microvm --sdk DIR --out DIR (see --help).
# Needs root, podman, node and npm (the SDK is installed from npm unless --sdk names a copy).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench E2bBench "$@"
