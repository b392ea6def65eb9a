#!/usr/bin/env bash
# The runtimes side by side (gvisor, container, microvm): create -> first exec against bare
# `runsc do true` and `crun run`, exec round trip, warm-pool claim -> first exec, 100 sandboxes
# create+exec+rm, idle memory per sandbox. Needs root and a set-up host.
# Flags: --runtimes gvisor,container,microvm --n 10 --claims 10 --many 100 (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench RuntimeBench "$@"
