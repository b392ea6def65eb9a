#!/usr/bin/env bash
# Installs the Debian packages Airlock needs and the user its VMMs run as. Idempotent: changes
# nothing when all are present.
#   install-packages.sh [--check]   (--check: list what is missing, exit 1 if anything is)
#
# The VMM is QEMU 10 or newer (file: migration, mapped-ram, a seccomp sandbox that works with
# -daemonize, a faster TCG). Debian 12 (bookworm) ships 7.2 and has 10 in bookworm-backports:
# that suite gets its own sources file and only the QEMU packages come from it (-t), so nothing
# else on the host moves. Newer Debian releases have QEMU 10 in their main suite.
set -euo pipefail
packages=(
  qemu-utils                          # qemu-img (QEMU itself: see qemu_packages)
  linux-source build-essential flex bison libelf-dev libssl-dev bc cpio kmod xz-utils  # guest kernel build
  mmdebstrap erofs-utils e2fsprogs    # root filesystem images and writable layers
  crun runc                           # OCI runtimes for container mode
  slirp4netns iptables                # --network nat: user-mode NAT for containers, host-side egress rules
  git ca-certificates util-linux passwd
  clang libclang-rt-dev               # tests: the agent's libFuzzer target (clang's -fsanitize=fuzzer runtime)
  conmon                              # airlock-runtime tests: podman's monitor, which calls the runtime
  containerd                          # airlock-runtime tests: ctr and the runc v2 shim (BinaryName), as Kubernetes' CRI uses them
  docker-registry skopeo umoci podman apache2-utils busybox-static  # image pull/import tests and bench: a loopback registry, real OCI clients, htpasswd, a static shell for test images
  buildah                             # bench/build.sh: the `buildah bud` baseline of image builds
)
qemu_packages=(qemu-system-x86 qemu-system-common qemu-system-data qemu-utils)
qemu_min=1:10.0
vmm_user=airlock-vmm                  # the unprivileged user every jailed VMM runs as (docs/security.md)
# Container sandboxes run in a user namespace: their uids 0-65535 are this user's subordinate
# ids on the host (/etc/subuid, /etc/subgid), one fixed range shared by every container
# (docs/security.md says why). The range sits far above what useradd hands to people
# (SUB_UID_MIN 100000 .. SUB_UID_MAX 600100000) and below 2^31, where some tools turn negative.
containers_user=airlock-containers
containers_first=1879048192            # 0x70000000
containers_count=65536
# gVisor's runsc (--runtime gvisor) must be 2024 or newer (the systrap platform, no KVM needed).
# Debian 12 (bookworm) ships a 2022 runsc and has 2024-07-29 in bookworm-backports, as it has
# QEMU 10: that suite gets its own sources file and only QEMU and runsc come from it (-t), so
# nothing else on the host moves.
runsc_min=0.0~20240729
backports_list=/etc/apt/sources.list.d/airlock-bookworm-backports.sources
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }
qemu_current() {
  installed qemu-system-x86 || return 1
  dpkg --compare-versions "$(dpkg-query -W -f='${Version}' qemu-system-x86)" ge "$qemu_min"
}
runsc_current() {
  installed runsc && dpkg --compare-versions "$(dpkg-query -W -f='${Version}' runsc)" ge "$runsc_min"
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
qemu_current || missing+=("qemu-system-x86>=10")
runsc_current || missing+=("runsc>=2024")
getent passwd "$vmm_user" >/dev/null || missing+=("user:$vmm_user")
containers_ready() {
  getent passwd "$containers_user" >/dev/null &&
    grep -q "^$containers_user:" /etc/subuid 2>/dev/null &&
    grep -q "^$containers_user:" /etc/subgid 2>/dev/null
}
containers_ready || missing+=("user:$containers_user")

if [ "${1:-}" = --check ]; then
  [ ${#missing[@]} = 0 ] && exit 0
  echo "${missing[*]}"
  exit 1
fi
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "airlock: missing: ${missing[*]}" >&2
  echo "airlock: run as root: sudo bin/airlock setup  (QEMU 10 comes from bookworm-backports on Debian 12)" >&2
  exit 2
fi
echo "airlock: installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_packages=()
for p in "${missing[@]}"; do
  case "$p" in
    user:* | qemu-system-x86\>=10 | runsc\>=2024) ;;
    *) apt_packages+=("$p") ;;
  esac
done
if [ ${#apt_packages[@]} -gt 0 ] || ! qemu_current || ! runsc_current; then
  if { ! qemu_current || ! runsc_current; } && [ "$codename" = bookworm ] \
    && ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >"$backports_list" <<'EOF'
# Added by Airlock's setup (scripts/install-packages.sh) for QEMU 10 and runsc; only packages installed
# with -t bookworm-backports come from here (backports have a low default priority).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -q >&2
  if [ ${#apt_packages[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${apt_packages[@]}" >&2
  fi
  target=()
  [ "$codename" = bookworm ] && target=(-t bookworm-backports)
  if ! qemu_current; then
    apt-get install -y -q --no-install-recommends "${target[@]}" "${qemu_packages[@]}" >&2
    qemu_current || {
      echo "airlock: QEMU 10 or newer is needed and apt did not install it" \
        "(installed: $(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || echo none))" >&2
      exit 1
    }
  fi
  if ! runsc_current; then
    apt-get install -y -q --no-install-recommends "${target[@]}" runsc >&2
    runsc_current || {
      echo "airlock: runsc $runsc_min or newer is needed and apt did not install it" \
        "(installed: $(dpkg-query -W -f='${Version}' runsc 2>/dev/null || echo none))" >&2
      exit 1
    }
  fi
fi
if ! getent passwd "$vmm_user" >/dev/null; then
  # A system user with no home, no shell and no password: nothing logs in as it; it only owns
  # what a jailed VMM may write (its disk layer, its RAM files).
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$vmm_user"
fi
if ! containers_ready; then
  # Like the VMM's user: nothing logs in as it. It owns no files itself; its subordinate ids are
  # what container root and the container's users are on the host.
  getent passwd "$containers_user" >/dev/null ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$containers_user"
  last=$((containers_first + containers_count - 1))
  for f in /etc/subuid /etc/subgid; do
    grep -q "^$containers_user:" "$f" 2>/dev/null && continue
    # Another user's range overlapping ours would share host ids with container root.
    if [ -f "$f" ] && awk -F: -v a="$containers_first" -v b="$last" \
        '$2 <= b && $2 + $3 - 1 >= a { found = 1 } END { exit !found }' "$f"; then
      echo "airlock: $f already gives ids $containers_first-$last (or part of them) to another user;" \
        "free them or give $containers_user a range of $containers_count ids by hand" >&2
      exit 1
    fi
  done
  grep -q "^$containers_user:" /etc/subuid 2>/dev/null || usermod --add-subuids "$containers_first-$last" "$containers_user"
  grep -q "^$containers_user:" /etc/subgid 2>/dev/null || usermod --add-subgids "$containers_first-$last" "$containers_user"
fi
