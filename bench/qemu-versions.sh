#!/usr/bin/env bash
# The one-time record of what moving from QEMU 7.2 to 10 changed: bench/sandbox.sh (exec and ping
# round trips, cold boot) and bench/snapshot.sh (template start -> first exec, fork, pause) in one
# run, same kernel, image and flags, under
#   1. QEMU 7.2 (bookworm; the copy bench/qemu-7.2.sh keeps), unjailed: 7.2 cannot be jailed
#   2. QEMU 10 (installed by setup), unjailed: the like-for-like comparison
#   3. QEMU 10 jailed, as Airlock runs it: what the jail costs
# The counts are below (smaller than each benchmark's defaults, three runs of each); results land
# in bench/results/ as usual. --daemon 0: the figures through airlockd are not part of this.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
qemu72=$("$here/qemu-7.2.sh")
sandbox_flags=(--daemon 0 --n 5 --warmup 1 --execs 60 --sessions 20 --stream-mb 50 --stream-runs 1 --sandboxes 1 --idle-timeout 20)
snapshot_flags=(--n 5 --forks 5 --fork-runs 2 --idle 2 --many 10 --parallel 2 --pause-runs 3)
for variant in "7.2:--qemu $qemu72 --vmm-jail off" "10:--vmm-jail off" "10-jailed:"; do
  name=${variant%%:*}
  read -r -a opts <<<"${variant#*:}"
  echo "=== QEMU $name: sandbox.sh" >&2
  "$here/sandbox.sh" "${opts[@]+"${opts[@]}"}" "${sandbox_flags[@]}"
  echo "=== QEMU $name: snapshot.sh" >&2
  "$here/snapshot.sh" "${opts[@]+"${opts[@]}"}" "${snapshot_flags[@]}"
done
