#!/usr/bin/env bash
# Container mode: create -> first exec result vs `crun run` of the same bundle (and podman run
# --rootfs when installed), and exec round trip vs `crun exec`. Needs root.
# Flags: --n 20 --warmup 2 --runtime crun|runc|PATH --out DIR (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench ContainerBench "$@"
