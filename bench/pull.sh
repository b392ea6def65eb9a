#!/usr/bin/env bash
# airlock image pull (download, verify, unpack, erofs) vs skopeo copy + umoci unpack of the same
# 4-layer image (the base image's tree) from the same loopback registry, cold each time. Needs root.
# Flags: --n 10 --warmup 1 --out DIR (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench PullBench "$@"
