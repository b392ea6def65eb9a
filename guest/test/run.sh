#!/bin/sh
# Runs the client suite against a freshly started agent, then once more (basic flows)
# with the agent under valgrind. Usage: run.sh AGENT_BINARY TEST_DIR
set -u
AGENT=$1
DIR=$2
CLIENT=$DIR/client
TMP=$(mktemp -d /tmp/airlock-agent-test.XXXXXX)
trap 'kill $APID 2>/dev/null; rm -rf "$TMP"' EXIT
fail=0

start() { # start CMD... : launches the agent on a fresh socket, waits for it
    SOCK=$TMP/agent.$$.$1.sock
    shift
    "$@" --serve-unix "$SOCK" >"$TMP/agent.log" 2>&1 &
    APID=$!
    i=0
    while [ ! -S "$SOCK" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
}

finish() { # shuts the agent down through the protocol and checks it exits 0
    "$CLIENT" "$SOCK" shutdown || fail=1
    wait $APID
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL agent exit status $rc"; cat "$TMP/agent.log"; fail=1
    fi
}

echo "== agent: $AGENT"
start main "$AGENT"
"$CLIENT" "$SOCK" all || { fail=1; cat "$TMP/agent.log"; }
finish
# nothing the agent started may survive SHUTDOWN
if pgrep -f 'sleep 100' >/dev/null 2>&1 && [ -n "$(pgrep -P 1 -f '^sleep 100$')" ]; then
    echo "FAIL processes survived shutdown"; fail=1
fi

if command -v valgrind >/dev/null 2>&1 && [ "${SKIP_VALGRIND:-}" = "" ]; then
    echo "== valgrind: $DIR/airlock-init-dbg"
    start vg valgrind -q --error-exitcode=1 --leak-check=no --track-fds=no "$DIR/airlock-init-dbg"
    CLIENT_TIMEOUT_SCALE=4 "$CLIENT" "$SOCK" hello exec signal stdin pty files fsops malformed reconnect || { fail=1; cat "$TMP/agent.log"; }
    finish
    if grep -Eq '==[0-9]+== +(Invalid|Conditional|Use of uninit|Syscall param)' "$TMP/agent.log"; then
        echo "FAIL valgrind reported errors"; cat "$TMP/agent.log"; fail=1
    fi
fi

[ $fail -eq 0 ] && echo "PASS" || echo "FAILED"
exit $fail
