# Sourced by bin/airlock and scripts/test: sets JAVA_HOME to a JDK 25 or newer, or explains
# how to get one and exits 2. The default java on Debian 12 is 17, so PATH is not trusted.
java_major() {  # prints the major version of a JDK home, or nothing
  local rel="$1/release"
  [ -x "$1/bin/java" ] && [ -f "$rel" ] || return 0
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$rel"
}

find_jdk() {
  if [ -n "${JAVA_HOME:-}" ] && [ "$(java_major "$JAVA_HOME")" -ge 25 ] 2>/dev/null; then
    echo "$JAVA_HOME"; return
  fi
  local best="" best_v=0 d v
  for d in "${AIRLOCK_JVM_DIR:-/usr/lib/jvm}"/*/; do
    d=${d%/}
    v=$(java_major "$d")
    if [ -n "$v" ] && [ "$v" -ge 25 ] && [ "$v" -gt "$best_v" ]; then best=$d; best_v=$v; fi
  done
  echo "$best"
}

jdk=$(find_jdk)
if [ -z "$jdk" ]; then
  echo "airlock: error: no JDK 25 or newer found (JAVA_HOME=${JAVA_HOME:-unset}, searched ${AIRLOCK_JVM_DIR:-/usr/lib/jvm})." >&2
  echo "airlock: install one (e.g. Temurin 25: apt-get install temurin-25-jdk) or point JAVA_HOME at it." >&2
  exit 2
fi
export JAVA_HOME=$jdk
# Maven 3.9 still calls sun.misc.Unsafe; JDK 25 warns about it on every build unless allowed.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
