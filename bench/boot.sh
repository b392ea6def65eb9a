#!/usr/bin/env bash
# Launch-to-init of the Airlock guest under QEMU microvm vs a bare boot of the same kernel.
# Flags: --n 20 --warmup 2 --trace 1 --memory 512 --timeout 120 --out DIR (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench BootBench "$@"
