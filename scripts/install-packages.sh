#!/usr/bin/env bash
# Installs the Debian packages Airlock needs. Idempotent: installs nothing when all are present.
#   install-packages.sh [--check]   (--check: list what is missing, exit 1 if anything is)
set -euo pipefail
packages=(
  qemu-system-x86 qemu-utils          # the VMM (QEMU microvm) and qemu-img
  linux-source build-essential flex bison libelf-dev libssl-dev bc cpio kmod xz-utils  # guest kernel build
  mmdebstrap erofs-utils e2fsprogs    # root filesystem images and writable layers
  crun runc                           # OCI runtimes for container mode
  slirp4netns iptables                # --network nat: user-mode NAT for containers, host-side egress rules
  git ca-certificates util-linux
  docker-registry skopeo umoci podman apache2-utils busybox-static  # image pull/import tests and bench: a loopback registry, real OCI clients, htpasswd, a static shell for test images
)
missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
if [ "${1:-}" = --check ]; then
  [ ${#missing[@]} = 0 ] && exit 0
  echo "${missing[*]}"
  exit 1
fi
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "airlock: these Debian packages are missing: ${missing[*]}" >&2
  echo "airlock: install them as root: sudo apt-get install ${missing[*]}  (or run: sudo bin/airlock setup)" >&2
  exit 2
fi
echo "airlock: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
