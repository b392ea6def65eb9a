#!/usr/bin/env bash
# QEMU 7.2 beside QEMU 10 (unjailed and jailed), interleaved round by round: cold boot to the
# agent, ping and exec round trips, template start -> first exec. Needs the 7.2 copy that
# bench/qemu-7.2.sh keeps. Flags: --boots 5 --execs 100 --starts 5 (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
"$(dirname "$(readlink -f "$0")")/qemu-7.2.sh" >/dev/null
run_bench VmmVersionsBench "$@"
