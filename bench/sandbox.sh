#!/usr/bin/env bash
# Sandbox cold start vs bare QEMU, exec and ping latency, stdout/stdin throughput, idle memory.
# Flags: --n 10 --warmup 1 --execs 200 --stream-mb 200 --stream-runs 3 --sandboxes 3 (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench SandboxBench "$@"
