#!/usr/bin/env bash
# Makes the CLI's ahead-of-time cache (JDK 25, JEP 483/514/515) for one jar: a training JVM runs
# the short commands (version, ps, exec in a throwaway container sandbox) under
# -XX:AOTCacheOutput, and the JVM writes the classes it loaded and linked and the methods'
# profiles to OUT, which every later `bin/airlock` maps at start. bin/airlock starts this in the
# background, once per jar, when OUT is missing; the command that started it runs without.
# Usage: aot-train.sh JAVA JAR OUT [JVM flags...]   (the flags the launcher runs the CLI with)
set -uo pipefail
java=$1 jar=$2 out=$3
shift 3
dir=$(dirname "$out")
exec 9>"$dir/train.lock"
if [ "${AIRLOCK_AOT:-}" = sync ]; then
  flock -w 600 9 || exit 0 # wait for another training to finish
else
  flock -n 9 || exit 0 # another training runs
fi
[ -f "$out" ] && exit 0
tmp="$dir/.$(basename "$out").$$"
trap 'rm -f "$tmp" "$tmp.config"; [ -n "${name:-}" ] && "$java" "$@" -jar "$jar" rm -f "$name" >/dev/null 2>&1' EXIT

# A container sandbox starts in ~50 ms where the host can run one; where it cannot (no root, no
# runc/crun), the exec path is left out of the training.
# The first try may meet a daemon of the previous build being replaced by the command that
# started this training: one more try.
name="aot-training-$$"
if ! "$java" "$@" -jar "$jar" run -d --runtime container --name "$name" >/dev/null &&
  ! "$java" "$@" -jar "$jar" run -d --runtime container --name "$name" >/dev/null; then
  name=""
fi
"$java" "$@" -XX:AOTCacheOutput="$tmp" -cp "$jar" dev.airlock.cli.AotTraining ${name:+"$name"} || exit 1
[ -s "$tmp" ] && mv -f "$tmp" "$out"
# Caches made over a week ago go (each is ~20 MB; a jar still in use gets a new one).
find "$dir" -maxdepth 1 -name '*.aot' -mtime +7 -delete 2>/dev/null
exit 0
