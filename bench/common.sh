# Shared by the benchmark wrappers: finds JDK 25, builds the jar when the sources are newer than
# it, and runs one benchmark main class with the repository as airlock.home.
set -euo pipefail
home=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
jar="$home/airlock/target/airlock.jar"
bench_jar="$home/bench/target/airlock-bench.jar"
client_jar="$home/client/target/airlock-client.jar"
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
if ! "$JAVA_HOME/bin/java" -version 2>&1 | grep -q 'version "25'; then
  . "$home/scripts/jdk.sh"
  JAVA_HOME=$jdk
fi
export JAVA_HOME

if [ ! -f "$jar" ] || [ ! -f "$bench_jar" ] || [ ! -f "$client_jar" ] \
  || [ -n "$(find "$home/airlock/src/main" "$home/client/src/main" "$home/bench/src" "$home/guest/src" "$home/jail" "$home"/pom.xml "$home"/*/pom.xml -newer "$bench_jar" -print -quit)" ]; then
  echo "bench: building the Airlock and benchmark jars (./mvnw package)..." >&2
  (cd "$home" && ./mvnw -B -q -DskipTests -Dspotless.check.skip=true -pl bench -am package >&2)
fi

run_bench() {
  local main=$1
  shift
  # Wrapper flags, taken out before the benchmark's own: --qemu PATH runs the VMs under that QEMU
  # binary (e.g. the 7.2 from bench/qemu-7.2.sh); --vmm-jail off runs them unjailed.
  local rest=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --qemu) export AIRLOCK_QEMU=$2; shift 2 ;;
      --vmm-jail) [ "$2" = off ] && export AIRLOCK_VMM_JAIL=off; shift 2 ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  set -- "${rest[@]+"${rest[@]}"}"
  exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Dairlock.home="$home" \
    -cp "$jar:$client_jar:$bench_jar" "dev.airlock.bench.$main" "$@"
}
