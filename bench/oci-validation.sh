#!/usr/bin/env bash
# The OCI runtime-tools validation suite (Debian bookworm's version, built offline by
# scripts/runtime-tools.sh) against runc, crun and bin/airlock-runtime (microVM mode, its
# default), in the same run: one line per test and runtime, a table of pass counts, and the
# whole result kept in bench/results/oci-validation-<time>.txt.
#   RUNTIME_TOOLS_SRC=/path/to/runtime-tools bench/oci-validation.sh [RUNTIME...]
# RUNTIME is runc, crun or airlock-runtime (default: all three). A test passes when its program
# exits 0 and its TAP output has no "not ok" (as the suite's own `make localvalidation` judges);
# one that skips itself (TAP "1..0 # SKIP") is counted as skipped, not passed. Each test gets at
# most TEST_TIMEOUT seconds (default 300: a microVM container boots under TCG here). TESTS names
# the tests to run, in that order (default: all 58, alphabetically).
# Needs root (the suite's bundles run as root). airlock-runtime uses a private daemon (data and
# runtime dirs of its own, the shared kernel/image cache), stopped at the end.
set -euo pipefail
home=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
suite=$("$home/scripts/runtime-tools.sh")
runtimes=("$@")
[ ${#runtimes[@]} -gt 0 ] || runtimes=(runc crun airlock-runtime)
timeout_s=${TEST_TIMEOUT:-300}
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
result="$home/bench/results/oci-validation-$stamp.txt"
work=$(mktemp -d /tmp/airlock-ocival-XXXX)
export AIRLOCK_DATA_DIR="$work/data" AIRLOCK_RUNTIME_DIR="$work/run"
mkdir -p -m 0700 "$AIRLOCK_DATA_DIR" "$AIRLOCK_RUNTIME_DIR"
cleanup() {
  if [ -f "$AIRLOCK_RUNTIME_DIR/airlockd.pid" ]; then
    kill "$(cat "$AIRLOCK_RUNTIME_DIR/airlockd.pid")" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# the tests unpack rootfs-amd64.tar.gz and copy runtimetest from their working directory
cp "$suite/runtimetest" "$suite/rootfs-amd64.tar.gz" "$work/"
# bin/airlock-runtime's command on a copy of the jar: the suite runs for a long while, and a
# rebuild of airlock/target meanwhile must not change the runtime under it
. "$home/scripts/jdk.sh"
cp "$home/airlock/target/airlock.jar" "$work/airlock.jar"
cat > "$work/airlock-runtime" <<EOF
#!/bin/sh
exec "$jdk/bin/java" --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Xshare:auto -Dairlock.home="$home" -cp "$work/airlock.jar" dev.airlock.ociruntime.AirlockRuntime "\$@"
EOF
chmod 0700 "$work/airlock-runtime"
cd "$work"

{
  echo "# OCI runtime-tools validation ($(basename "$suite"), Debian bookworm's 0.9.0+git20220423)"
  echo "# $(date -u +%FT%TZ); $(uname -r); load: $(cut -d' ' -f1-3 /proc/loadavg)"
  for rt in "${runtimes[@]}"; do
    case $rt in
      runc) echo "# runc: $(runc --version | head -1)" ;;
      crun) echo "# crun: $(crun --version | head -1)" ;;
      airlock-runtime) echo "# airlock-runtime: $(git -C "$home" describe --always --dirty), mode microvm" ;;
    esac
  done
} | tee "$result"

declare -A pass skip fail
for rt in "${runtimes[@]}"; do
  pass[$rt]=0 skip[$rt]=0 fail[$rt]=0
  bin=$rt
  [ "$rt" = airlock-runtime ] && bin="$work/airlock-runtime"
  for name in ${TESTS:-$(ls "$suite/validation")}; do
    t="$suite/validation/$name"
    log="$work/$rt-$name.tap"
    t0=$(date +%s)
    rc=0
    RUNTIME=$bin timeout --kill-after=10 "$timeout_s" "$t" >"$log" 2>&1 </dev/null || rc=$?
    secs=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ] && grep -q '^1\.\.0 # [Ss][Kk][Ii][Pp]' "$log"; then
      verdict=skip
      skip[$rt]=$(( ${skip[$rt]} + 1 ))
    elif [ $rc -eq 0 ] && ! grep -q '^not ok' "$log"; then
      verdict=pass
      pass[$rt]=$(( ${pass[$rt]} + 1 ))
    else
      verdict=fail
      fail[$rt]=$(( ${fail[$rt]} + 1 ))
    fi
    why=""
    if [ $verdict = fail ]; then
      [ $rc -eq 124 ] && why="timed out after ${timeout_s}s" ||
        why=$( (grep -m1 -E '^not ok' "$log" || grep -m1 -iE 'error|fail|unsupported' "$log" || tail -1 "$log") |
          tr -s '\t ' ' ' | cut -c1-160)
    fi
    printf '%-16s %-40s %-4s %4ss %s\n' "$rt" "$name" "$verdict" "$secs" "$why" | tee -a "$result"
  done
done

total=$(wc -w <<<"${TESTS:-$(ls "$suite/validation")}")
{
  echo
  echo "| runtime | passed | failed | skipped | of |"
  echo "|---|---|---|---|---|"
  for rt in "${runtimes[@]}"; do
    echo "| $rt | ${pass[$rt]} | ${fail[$rt]} | ${skip[$rt]} | $total |"
  done
} | tee -a "$result"
echo "results: $result"
