#!/usr/bin/env bash
# `podman run --rm IMAGE true` wall time with each OCI runtime in the same run: runc, crun and
# bin/airlock-runtime in each mode (microvm, container, gvisor: the run.airlock.runtime
# annotation), plus the memory of airlock-runtime's stand-in process.
# The image is a busybox root imported into private podman storage. Needs root and podman.
#   bench/oci-runtime.sh [N]   (default 5 runs per runtime; the median and min are printed)
set -euo pipefail
home=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
n=${1:-5}
work=$(mktemp -d /tmp/airlock-ocibench-XXXX)
trap 'podman $store rm -af >/dev/null 2>&1 || true; podman $store rmi -af >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
store="--root $work/storage --runroot $work/run"
cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=65536:65536"]
[engine]
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF="$work/containers.conf"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /usr/bin/busybox "$work/rootfs/bin/" && ln -s busybox "$work/rootfs/bin/true" && ln -s busybox "$work/rootfs/bin/sleep"
tar -C "$work/rootfs" -cf "$work/image.tar" . && podman $store import -q "$work/image.tar" localhost/bench >/dev/null

# conmon gives the runtime an environment of its own: a wrapper carries the caller's Airlock
# directories (AIRLOCK_DATA_DIR, AIRLOCK_RUNTIME_DIR, AIRLOCK_CACHE_DIR) through, so the bench can
# run on a daemon of its own instead of replacing the default one.
runtime="$work/airlock-runtime"
{ echo '#!/bin/sh'; env | grep -E '^AIRLOCK_(DATA|RUNTIME|CACHE)_DIR=' | sed "s/^/export /; s/=/='/; s/\$/'/" || true
  echo "exec '$home/bin/airlock-runtime' \"\$@\""; } > "$runtime"
chmod 0755 "$runtime"

ms() { date +%s%3N; }
for choice in runc crun airlock-runtime:microvm airlock-runtime:container airlock-runtime:gvisor; do
  rt=${choice%%:*} mode=()
  [ "$rt" = airlock-runtime ] && rt="$runtime" && mode=(--annotation "run.airlock.runtime=${choice#*:}")
  times=()
  for i in $(seq "$n"); do
    t0=$(ms)
    if ! podman $store --runtime "$rt" run --rm --network none "${mode[@]}" localhost/bench true >/dev/null 2>"$work/err"; then
      echo "$choice: fails here: $(tail -1 "$work/err")"; continue 2
    fi
    times+=($(( $(ms) - t0 )))
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  echo "$choice: median $(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p") ms, min $(echo "$sorted" | head -1) ms over $n runs"
done
id=$(podman $store --runtime "$runtime" run -d --network none localhost/bench sleep 60)
# The stand-in is airlock-standin (guest/standin/standin.c) since issue 16's stop s23; the JVM
# stand-in it replaced measured 49.6 MB PSS, 69.0 MB RSS here (s22).
pid=$(pgrep -f "airlock-standin .*/$id ")
echo "stand-in process: $(awk '/^Pss:/ {print $2}' /proc/$pid/smaps_rollup) kB PSS, $(awk '/VmRSS/ {print $2}' /proc/$pid/status) kB RSS (the JVM stand-in before: 49.6 MB PSS, 69.0 MB RSS)"
podman $store rm -f "$id" >/dev/null
