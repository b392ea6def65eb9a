#!/usr/bin/env bash
# Instant start: template start -> first exec vs cold boot, warm-pool claim -> first exec, fork xN until all answer, marginal PSS
# per template-started sandbox and per fork, 100 sandboxes create+exec+rm, pause/resume.
# Flags: --n 10 --forks 10 --fork-runs 3 --idle 5 --many 100 --parallel 2 --pause-runs 5
# --sections starts,pool,wake,forks,memory,many,pauses (see --help).
. "$(dirname "$(readlink -f "$0")")/common.sh"
run_bench SnapshotBench "$@"
