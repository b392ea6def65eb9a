#!/usr/bin/env bash
# Builds the OCI runtime-tools validation suite (runtimetest and one program per validation
# test) offline, into ~/.cache/airlock/runtime-tools-<commit>, and prints that directory.
#
# The version is Debian bookworm's (golang-github-opencontainers-runtime-tools-dev
# 0.9.0+git20220423, upstream commit 0105384). Debian's binary package ships only the library
# packages, not validation/ nor cmd/runtimetest, and the reachable Debian mirror holds no source
# packages, so the source comes from a runtime-tools git repository given as RUNTIME_TOOLS_SRC
# (a clone or bare repository holding that commit; its own vendor/ directory has every Go
# dependency). Go is Debian's golang-go, installed here when missing. No network for Go:
# GOPROXY=off, GOFLAGS=-mod=vendor. Idempotent: a finished build is reused.
#   RUNTIME_TOOLS_SRC=/path/to/runtime-tools scripts/runtime-tools.sh
set -euo pipefail
commit=0105384f68e16803891d0a17d9067b1def6a2778
out=${AIRLOCK_CACHE:-$HOME/.cache/airlock}/runtime-tools-${commit:0:7}
if [ -f "$out/.built" ]; then
  echo "$out"
  exit 0
fi
src=${RUNTIME_TOOLS_SRC:-}
if [ -z "$src" ] || ! git -C "$src" cat-file -e "$commit^{commit}" 2>/dev/null; then
  echo "runtime-tools.sh: set RUNTIME_TOOLS_SRC to a runtime-tools git repository holding commit $commit" \
    "(Debian's package lacks the validation suite and its source package is not on the reachable mirror)" >&2
  exit 2
fi
if ! command -v go >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-go >&2
fi
tmp=$(mktemp -d "${out}.tmp-XXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/gocache"
git -C "$src" archive "$commit" | tar -x -C "$tmp/src"
export GOPROXY=off GOFLAGS=-mod=vendor GO111MODULE=on GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath" CGO_ENABLED=0
cd "$tmp/src"
# runtimetest runs inside the container: static, as the upstream Makefile builds it.
go build -tags "netgo osusergo" -o "$tmp/bin/runtimetest" ./cmd/runtimetest
for t in validation/*/*.go; do
  case $t in validation/util/*) continue ;; esac # the tests' shared package
  name=$(basename "$t" .go)
  go build -o "$tmp/bin/validation/$name" "./$t"
done
# The tests run from a directory holding runtimetest and the rootfs tarball they unpack.
cp rootfs-amd64.tar.gz "$tmp/bin/"
rm -rf "$out"
mv "$tmp/bin" "$out"
touch "$out/.built"
echo "$out"
