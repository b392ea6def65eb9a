#!/usr/bin/env bash
# Builds the Airlock guest kernel from Debian's linux-source package.
#   build-kernel.sh FRAGMENT OUT_DIR
# Writes OUT_DIR/vmlinux (ELF, PVH entry), OUT_DIR/bzImage and OUT_DIR/config.
# The caller (airlock setup) owns caching: it names OUT_DIR after a hash of
# the source version, the fragment and this script, and calls us only on a miss.
set -euo pipefail
fragment=$(readlink -f "$1")
out=$2
tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$tarball" ]; then
  echo "error: no /usr/src/linux-source-*.tar.xz; install it with: apt-get install linux-source" >&2
  exit 3
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "[kernel] unpacking $(basename "$tarball")" >&2
tar -xf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
cd "$src"
echo "[kernel] configuring: tinyconfig + $(basename "$fragment")" >&2
make -s tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O . .config "$fragment" >/dev/null
make -s olddefconfig >/dev/null
# A fragment line that did not survive olddefconfig is a missing dependency: fail now.
missing=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=*) ;; *) continue ;; esac
  if ! grep -qxF "$line" .config; then
    echo "[kernel] error: option lost after olddefconfig: $line" >&2
    missing=1
  fi
done <"$fragment"
[ "$missing" = 0 ] || exit 4
jobs=$(nproc)
echo "[kernel] compiling with -j$jobs (about 10 minutes on 2 cores)" >&2
make -j"$jobs" vmlinux bzImage 2>&1 | while IFS= read -r l; do
  case "$l" in *warning*|*error*|*Error*) echo "[kernel] $l" >&2 ;; "  CC "*) n=$(( ${n:-0} + 1 )); [ $(( n % 100 )) = 0 ] && echo "[kernel] compiled $n files" >&2 ;; esac
done
[ -f vmlinux ] && [ -f arch/x86/boot/bzImage ] || { echo "[kernel] error: build produced no image" >&2; exit 5; }
mkdir -p "$out.tmp"
cp vmlinux "$out.tmp/vmlinux"
cp arch/x86/boot/bzImage "$out.tmp/bzImage"
cp .config "$out.tmp/config"
echo "$(make -s kernelversion)" >"$out.tmp/version"
echo "$(( $(date +%s) - start ))" >"$out.tmp/build-seconds"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "[kernel] done in $(cat "$out/build-seconds")s: vmlinux $(du -h "$out/vmlinux" | cut -f1), bzImage $(du -h "$out/bzImage" | cut -f1)" >&2
