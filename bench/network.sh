#!/usr/bin/env bash
# Egress through --network proxy and --network nat vs the host's own loopback: many small requests (per-request
# time) and one large download (MB/s), per runtime. All traffic stays on this host's loopback.
# Flags: --runtimes container,microvm --rounds 5 --small 50 --small-bytes 1024 --large-mb 64 (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench NetworkBench "$@"
