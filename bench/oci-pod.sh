#!/usr/bin/env bash
# `ctr run --rm` wall time of an app container joining a running microVM pod (it makes no VM: its
# process runs in the pod's VM on its own root) against a new microVM-mode container (a VM of its
# own), through containerd's runc v2 shim with BinaryName = bin/airlock-runtime, as CRI runs pods.
# A private containerd (own root, state, socket; CRI off) and a busybox image built here.
# Needs root and containerd (Debian's 1.6).
#   bench/oci-pod.sh [N]   (default 3 runs each; the median and min are printed)
set -euo pipefail
home=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
n=${1:-3}
work=$(mktemp -d /tmp/airlock-podbench-XXXX)
sock="$work/containerd.sock"
c() { ctr --address "$sock" "$@"; }
cleanup() {
  for id in $(c task ls -q 2>/dev/null); do c task delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(c container ls -q 2>/dev/null); do c container rm "$id" >/dev/null 2>&1 || true; done
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
  grep -o "$work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The same busybox image as ContainerdRuntimeTest, as an OCI layout in a tar
mkdir -p "$work/rootfs/bin" "$work/oci/blobs/sha256"
cp /usr/bin/busybox "$work/rootfs/bin/"
for a in sh echo true nc sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
mkdir -p "$work/rootfs/"{etc,tmp,proc,sys,dev,run}
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/layer.tar" .
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$work/oci/blobs/sha256/$d"; echo "$d"; }
layer=$(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" > "$work/config.json"
config=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(stat -c %s "$work/config.json")" "$layer" "$(stat -c %s "$work/layer.tar")" > "$work/manifest.json"
manifest=$(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/podbench:latest","org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest" "$(stat -c %s "$work/manifest.json")" > "$work/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
tar -C "$work/oci" -cf "$work/image.tar" .

cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
CONF
containerd --config "$work/config.toml" > "$work/containerd.log" 2>&1 &
cpid=$!
for _ in $(seq 300); do c version >/dev/null 2>&1 && break; sleep 0.1; done
c image import "$work/image.tar" >/dev/null
image=docker.io/library/podbench:latest

# The shim runs the runtime with its own environment: a wrapper carries the caller's Airlock
# directories through (as bench/oci-runtime.sh does).
runtime="$work/airlock-runtime"
{ echo '#!/bin/sh'; env | grep -E '^AIRLOCK_(DATA|RUNTIME|CACHE)_DIR=' | sed "s/^/export /; s/=/='/; s/\$/'/" || true
  echo "exec '$home/bin/airlock-runtime' \"\$@\""; } > "$runtime"
chmod 0755 "$runtime"
run() { c run --runtime io.containerd.runc.v2 --runc-binary "$runtime" --runc-root "$work/runc" "$@"; }
cri() { echo --annotation "io.kubernetes.cri.container-type=$1" --annotation "io.kubernetes.cri.sandbox-id=pod"; }

ms() { date +%s%3N; }
report() { # report NAME TIMES...
  local name=$1; shift
  local sorted; sorted=$(printf '%s\n' "$@" | sort -n)
  echo "$name: median $(echo "$sorted" | sed -n "$(( ($# + 1) / 2 ))p") ms, min $(echo "$sorted" | head -1) ms over $# runs"
}

t0=$(ms)
run -d $(cri sandbox) "$image" pod sh -c 'while :; do echo hi | nc -l -p 8080; done' >/dev/null
echo "pod sandbox container (boots the pod's VM): $(( $(ms) - t0 )) ms"
pid=$(c task ls | awk '$1 == "pod" {print $2}')
ns=()
for t in network:net ipc:ipc uts:uts; do ns+=(--with-ns "${t%%:*}:/proc/$pid/ns/${t#*:}"); done
times=()
for i in $(seq "$n"); do
  t0=$(ms)
  run --rm $(cri container) "${ns[@]}" "$image" "app-$i" true
  times+=($(( $(ms) - t0 )))
done
report "ctr run --rm: an app container into the running pod's VM" "${times[@]}"
times=()
for i in $(seq "$n"); do
  t0=$(ms)
  run --rm "$image" "vm-$i" true
  times+=($(( $(ms) - t0 )))
done
report "ctr run --rm: a new microVM-mode container (its own VM)" "${times[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
