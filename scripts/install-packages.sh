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
  podman conmon busybox-static       # airlock-runtime's tests: the real OCI client, and a tiny image root
  git ca-certificates util-linux
)
# gVisor's runsc (--runtime gvisor) must be 2024 or newer (the systrap platform, no KVM needed).
# Debian 12 (bookworm) ships a 2022 runsc and has 2024-07-29 in bookworm-backports: that suite
# gets its own sources file and only runsc comes from it (-t), so nothing else on the host moves.
runsc_min=0.0~20240729
backports_list=/etc/apt/sources.list.d/airlock-bookworm-backports.sources
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
runsc_current() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' runsc 2>/dev/null || true)" = installed ] \
    && dpkg --compare-versions "$(dpkg-query -W -f='${Version}' runsc)" ge "$runsc_min"
}
missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
runsc_current || missing+=("runsc>=2024")
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
if ! runsc_current && [ "$codename" = bookworm ] \
  && ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat >"$backports_list" <<'EOF'
# Added by Airlock's setup (scripts/install-packages.sh); only packages installed
# with -t bookworm-backports come from here (backports have a low default priority).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
apt-get update -q >&2
plain=()
for p in "${missing[@]}"; do
  [ "$p" = "runsc>=2024" ] || plain+=("$p")
done
if [ ${#plain[@]} -gt 0 ]; then
  apt-get install -y -q --no-install-recommends "${plain[@]}" >&2
fi
if ! runsc_current; then
  target=()
  [ "$codename" = bookworm ] && target=(-t bookworm-backports)
  apt-get install -y -q --no-install-recommends "${target[@]}" runsc >&2
  runsc_current || {
    echo "airlock: runsc $runsc_min or newer is needed and apt did not install it" \
      "(installed: $(dpkg-query -W -f='${Version}' runsc 2>/dev/null || echo none))" >&2
    exit 1
  }
fi
