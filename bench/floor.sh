#!/usr/bin/env bash
# Where an exec of `true` in a microVM goes under TCG: the emulated CPU (the QEMU process's
# user+system time) per process created inside the guest, one way after another, by
# bench/src/main/c/spawn.c run N times in a loop inside one sandbox, beside a plain `airlock exec`
# of true (the whole path: host, agent, guest). Each mode's figure is QEMU's CPU over the loop / N.
#   bench/floor.sh [N]   (default 300; needs root, a set-up host; about 2 min on an idle host)
# The sandbox and its daemon live in a private temporary directory, removed at the end.
set -euo pipefail
home=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
n=${1:-300}
airlock="$home/bin/airlock"
tmp=$(mktemp -d /tmp/airlock-bench-floor-XXXXXX)
runtime=$(mktemp -d /tmp/alfloor.XXXXXX)
export AIRLOCK_DATA_DIR="$tmp/data" AIRLOCK_RUNTIME_DIR="$runtime"
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -f "$AIRLOCK_DATA_DIR/airlockd.log" ]; then
    tail -20 "$AIRLOCK_DATA_DIR/airlockd.log" >&2 # why the run failed, before the directory goes
  fi
  "$airlock" rm -f floor >/dev/null 2>&1 || true
  if [ -f "$runtime/airlockd.pid" ]; then
    kill "$(cat "$runtime/airlockd.pid")" 2>/dev/null || true
  fi
  rm -rf "$tmp" "$runtime"
}
trap cleanup EXIT

# The probe and a static true, built for the guest (x86-64, static: no loader in the way).
gcc -O2 -static -o "$tmp/spawn" "$home/bench/src/main/c/spawn.c"
printf 'int main(void){return 0;}\n' >"$tmp/true.c"
gcc -O2 -static -o "$tmp/true-static" "$tmp/true.c"

"$airlock" run -d --runtime microvm --name floor >/dev/null
"$airlock" cp "$tmp/spawn" floor:/root/spawn
"$airlock" cp "$tmp/true-static" floor:/root/true-static
"$airlock" exec floor -- chmod 755 /root/spawn /root/true-static
pid=$("$airlock" inspect floor | sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' | head -1)
[ -n "$pid" ] || { echo "floor: no VMM pid in 'airlock inspect floor'" >&2; exit 1; }
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.0f", (f[12] + f[13]) * 1000 / hz }' "/proc/$pid/stat"; }

printf '%-58s %10s %12s\n' "one process, created as" "QEMU CPU" "guest wall"
measure() { # label, then the command run inside the guest
  local label=$1
  shift
  "$airlock" exec floor -- "$@" >/dev/null # warm: translate once
  local c0 c1 wall
  c0=$(cpu)
  wall=$("$airlock" exec floor -- "$@")
  c1=$(cpu)
  printf '%-58s %7.2f ms %9.2f ms\n' "$label" "$(echo "($c1 - $c0) / $n" | bc -l)" "$wall"
}
measure "fork, child _exit (no exec)" /root/spawn "$n" forkonly /root/true-static
measure "fork + execve of a static true" /root/spawn "$n" fork /root/true-static
measure "vfork + execve of a static true" /root/spawn "$n" vfork /root/true-static
measure "fork + execve of /bin/true (dynamic: ld.so, libc)" /root/spawn "$n" fork /bin/true
measure "  + reset 64 signal handlers one by one (the agent before)" /root/spawn "$n" signals /bin/true
measure "  + move into the command cgroup (the agent)" /root/spawn "$n" cgroup /bin/true
measure "  the agent's child now (mask, SIGPIPE, setsid, cgroup, chdir)" /root/spawn "$n" agent /bin/true

# The whole path of `airlock exec floor -- true`: host CLI, daemon, agent and guest, per exec;
# QEMU's CPU only (the host side is not emulated).
m=20
c0=$(cpu)
t0=$(date +%s%N)
for _ in $(seq "$m"); do "$airlock" exec floor -- true; done
t1=$(date +%s%N)
c1=$(cpu)
printf '%-58s %7.2f ms %9s\n' "airlock exec floor -- true (whole, $m runs; wall incl. CLI)" \
  "$(echo "($c1 - $c0) / $m" | bc -l)" "$(echo "($t1 - $t0) / $m / 1000000" | bc) ms"
