#!/usr/bin/env bash
# airlock image build vs `buildah bud` and podman build (buildah's library) of the same 5-step
# Dockerfile FROM the same busybox image, pushed to a loopback registry and pulled by each first. Cold (--no-cache: every step runs) and cached (a second build, nothing
# changed), alternating tools, in one run. Airlock's RUN steps execute in a microVM sandbox (the
# host's default runtime) and, as a second case, in a container sandbox; buildah's and podman's
# in a runc container. Needs root and a set-up host (bin/airlock setup).
# Flags: --n 3 (measured builds per case and cache state), --warmup 1 (discarded cold builds per
# case first), --out DIR (default bench/results).
set -euo pipefail
home=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
n=3
warmup=1
out="$home/bench/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --n) n=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench/build.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in podman buildah skopeo umoci docker-registry busybox; do
  command -v "$tool" >/dev/null || { echo "bench/build.sh: $tool is missing; run scripts/install-packages.sh" >&2; exit 2; }
done

work=$(mktemp -d /tmp/airlock-bench-build-XXXXXX)
registry_pid=""
cleanup() {
  set +e
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  for t in bench-build/microvm:1 bench-build/container:1; do "$home/bin/airlock" image rm "$t" >/dev/null 2>&1; done
  [ -n "${ref:-}" ] && "$home/bin/airlock" image rm "$ref" >/dev/null 2>&1
  # the daemon the CLI started on demand for this run's private runtime directory
  if [ -f "$work/run/airlockd.pid" ]; then kill "$(cat "$work/run/airlockd.pid")" 2>/dev/null; sleep 1; fi
  # this run's podman storage only (no system reset: that would touch the host's networks)
  podman --root "$work/podman" --runroot "$work/podrun" rmi --all --force >/dev/null 2>&1
  buildah --root "$work/buildah" --runroot "$work/buildrun" rmi --all --force >/dev/null 2>&1
  findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -m 0700 "$work/run" "$work/data"
export AIRLOCK_RUNTIME_DIR=$work/run AIRLOCK_DATA_DIR=$work/data
# runc and cgroupfs: crun refuses this kind of host's hybrid cgroup layout, and there is no systemd;
# default ulimits runc can set here (the host's hard nofile limit is below containers' default,
# and an nproc of 65536 is refused with EPERM when the RUN container starts)
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF=$work/containers.conf
podman=(podman --root "$work/podman" --runroot "$work/podrun" --runtime runc --cgroup-manager cgroupfs)
buildah=(buildah --root "$work/buildah" --runroot "$work/buildrun")

# The base image: static busybox and its applets, one layer, made with umoci.
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:1"
umoci unpack --rootless --image "$layout:1" "$work/bundle" >/dev/null
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/etc" "$work/bundle/rootfs/tmp"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/bundle/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/bundle/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/bundle/rootfs/etc/group"
umoci repack --image "$layout:1" "$work/bundle"
umoci config --image "$layout:1" --config.env PATH=/bin

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
  sleep 0.1
done
ref=127.0.0.1:$port/bench/base:1
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://$ref"
"$home/bin/airlock" image pull --quiet "$ref" >/dev/null
"${podman[@]}" pull --quiet --tls-verify=false "$ref" >/dev/null
"${buildah[@]}" pull --quiet --tls-verify=false "$ref" >/dev/null
# the base image's first microVM boot saves its VM template: done here, not in a measured build
"$home/bin/airlock" run --rm --image "$ref" -- true

# The context and the Dockerfile: FROM + 5 steps (COPY, RUN, RUN, ENV, RUN).
ctx=$work/context
mkdir -p "$ctx/src"
for i in $(seq 1 50); do head -c 4096 /dev/urandom | base64 >"$ctx/src/$i.txt"; done
cat >"$ctx/Dockerfile" <<EOF
FROM $ref
COPY src/ /src/
RUN cat /src/*.txt > /all.txt && wc -c /all.txt
RUN mkdir -p /out && for i in \$(seq 1 200); do echo "line \$i" > /out/f\$i; done
ENV MODE=bench
RUN dd if=/dev/urandom of=/out/blob bs=1M count=8 2>/dev/null && rm /src/1.txt
EOF

now() { date +%s.%N; }
declare -A samples
measure() { # case state command...
  local key="$1/$2"
  shift 2
  local t0 t1
  t0=$(now)
  "$@" >"$work/last.log" 2>&1 || { echo "bench/build.sh: $key failed:" >&2; cat "$work/last.log" >&2; exit 1; }
  t1=$(now)
  samples[$key]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') "
}
airlock_build() { # runtime, extra flags
  local rt=$1
  shift
  "$home/bin/airlock" image build --runtime "$rt" "$@" -t "bench-build/$rt:1" "$ctx"
}
buildah_build() {
  "${buildah[@]}" bud --pull=never --network none --isolation oci --runtime runc --layers "$@" -t bench-build:1 "$ctx"
}
podman_build() {
  "${podman[@]}" build --pull=never --network none --isolation oci --layers "$@" -t bench-build:1 "$ctx"
}

# warm-up builds of each (page cache, the microVM template of the base image), discarded
for _ in $(seq 1 "$warmup"); do
  airlock_build microvm --no-cache >/dev/null 2>&1
  airlock_build container --no-cache >/dev/null 2>&1
  buildah_build --no-cache >/dev/null 2>&1
  podman_build --no-cache >/dev/null 2>&1
done
for i in $(seq 1 "$n"); do
  if [ $((i % 2)) -eq 1 ]; then order="microvm container buildah podman"; else order="podman buildah container microvm"; fi
  for c in $order; do
    if [ "$c" = podman ]; then
      measure podman cold podman_build --no-cache
      measure podman cached podman_build
    elif [ "$c" = buildah ]; then
      measure buildah cold buildah_build --no-cache
      measure buildah cached buildah_build
    else
      measure "airlock-$c" cold airlock_build "$c" --no-cache
      measure "airlock-$c" cached airlock_build "$c"
    fi
  done
  echo "bench/build.sh: run $i/$n done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
mkdir -p "$out"
result="$out/build-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# bench/build.sh, $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $n builds per cell after $warmup warm-up(s)"
  echo
  echo "5-step Dockerfile (COPY 50 files, RUN, RUN writing 200 files, ENV, RUN writing 8 MiB) FROM a"
  echo "busybox image in a loopback registry. Seconds, median (all samples)."
  echo
  echo "| tool | cold (--no-cache) | cached (nothing changed) |"
  echo "|---|---|---|"
  for c in airlock-microvm airlock-container buildah podman; do
    cold=${samples[$c/cold]}
    cached=${samples[$c/cached]}
    echo "| $c | $(echo "$cold" | median) ($cold) | $(echo "$cached" | median) ($cached) |"
  done
  echo
  echo "airlock-microvm: RUN in a microVM sandbox (the accel airlock doctor reports for this host);"
  echo "airlock-container: RUN in a container sandbox; buildah $(buildah --version | cut -d' ' -f3): buildah bud --layers"
  echo "--isolation oci --runtime runc --network none; podman $(podman --version | cut -d' ' -f3): buildah's library, the same flags."
  echo "Airlock's times include its JVM start and packing the result as an erofs image; buildah's and"
  echo "podman's result is layers in their overlay stores."
} >"$result"
cat "$result"
echo "result: $result"
