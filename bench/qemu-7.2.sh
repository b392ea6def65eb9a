#!/usr/bin/env bash
# Keeps a runnable copy of Debian bookworm's QEMU 7.2 for the one-time 7.2-vs-10 comparison,
# beside the QEMU 10 that setup installs from bookworm-backports. The .debs come from the
# archive with apt-get download (never installed): they are unpacked with dpkg -x into
#   ${AIRLOCK_CACHE_DIR:-~/.cache/airlock}/qemu-7.2/
# and the script prints the binary's path. Idempotent. Run the benchmarks with it through
# AIRLOCK_QEMU=<that path> (QEMU's data files, e.g. the microvm BIOS, come from the copy via -L).
set -euo pipefail
cache=${AIRLOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock}
dest="$cache/qemu-7.2"
bin="$dest/usr/bin/qemu-system-x86_64"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q 'version 7\.2'; then
  echo "$bin"
  exit 0
fi
# The newest 7.2 build that bookworm (not backports) offers.
version=$(apt-cache madison qemu-system-x86 | awk -F'|' '$2 ~ /7\.2/ {gsub(/ /, "", $2); print $2; exit}')
data_version=$(apt-cache madison qemu-system-data | awk -F'|' '$2 ~ /7\.2/ {gsub(/ /, "", $2); print $2; exit}')
if [ -z "$version" ] || [ -z "$data_version" ]; then
  echo "bench: no QEMU 7.2 in the apt lists (bookworm main); run apt-get update" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "qemu-system-x86=$version" "qemu-system-common=$version" \
  "qemu-system-data=$data_version" >&2)
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest.tmp"; done
rm -rf "$dest" && mv "$dest.tmp" "$dest"
"$bin" --version | head -1 >&2
echo "$bin"
