#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-httpd --proxy with three upstreams behind one prefix (Python
# upstreams, proxy_balance.py): round robin spreads 300 GETs evenly;
# least-conn sends none of the quick GETs to the upstream busy with a slow
# one; an upstream killed mid-run costs the GET clients nothing (refused
# and reset requests go to the next upstream), is logged down for
# --proxy-fail-timeout and barely tried meanwhile, and takes requests
# again once restarted and the timeout passed.
#
# usage: httpd_proxy_balance.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_proxy_balance "$@"

HERE=$(dirname "$0")
FAIL_MS=2000
declare -A UP_PID UP_PORT

# up_start NAME [PORT]
up_start() {
	rm -f "$TMP_DIR/$1.port"
	"$PY" "$HERE/proxy_balance.py" upstream "$1" "$TMP_DIR/$1.port" "${2:-0}" </dev/null &
	UP_PID[$1]=$!
	BG_PIDS+=($!)
	wait_for 10 test -s "$TMP_DIR/$1.port" || fail "upstream $1 did not start"
	UP_PORT[$1]=$(cat "$TMP_DIR/$1.port")
}

pb() {
	timeout -k 5 60 "$PY" "$HERE/proxy_balance.py" "$@"
}

for u in u1 u2 u3; do
	up_start $u
done
PROXIES=()
for u in u1 u2 u3; do
	PROXIES+=(--proxy "/b/=http://127.0.0.1:${UP_PORT[$u]}")
done

# least connections
httpd_start --cores 1 --proxy-balance least-conn "${PROXIES[@]}"
pb lc "$SERVER_PORT" "${UP_PORT[u1]},${UP_PORT[u2]},${UP_PORT[u3]}" || fail "least-conn checks failed (see above)"
httpd_stop

# round robin, then an upstream killed and brought back
httpd_start --cores 1 --proxy-fail-timeout $FAIL_MS --proxy-timeout 5000 "${PROXIES[@]}"
pb rr "$SERVER_PORT" 300 u1,u2,u3 || fail "round robin checks failed (see above)"

pb hammer "$SERVER_PORT" 4 >"$TMP_DIR/hammer.out" 2>&1 &
HAMMER=$!
BG_PIDS+=("$HAMMER")
sleep 1
kill -KILL "${UP_PID[u3]}"
wait "${UP_PID[u3]}" 2>/dev/null || true
rc=0
wait "$HAMMER" || rc=$?
cat "$TMP_DIR/hammer.out"
[ "$rc" -eq 0 ] || fail "GET clients saw errors while u3 died (see above)"
U3="127.0.0.1:${UP_PORT[u3]}"
grep -q "proxy /b/: upstream $U3: down for $FAIL_MS ms" "$SERVER_LOG" ||
	fail "u3 was not logged down: $(grep "$U3" "$SERVER_LOG" | head -5)"
tries=$(grep -c "proxy /b/: upstream $U3: Connection refused" "$SERVER_LOG" || true)
echo "u3 refused $tries request(s) while down for ${FAIL_MS} ms at a time over ~3 s"
# down for 2 s at a time over the ~3 s left of the run: at each mark-down
# the clients' requests already bound for it (4 clients) are refused, then
# none: a few tries, not one GET in three (thousands)
[ "$tries" -le 12 ] || fail "u3 was tried $tries times while down (want <= 12)"

up_start u3 "${UP_PORT[u3]}"
sleep $((FAIL_MS / 1000 + 1))
pb spread "$SERVER_PORT" 30 u3 || fail "u3 did not come back (see above)"
httpd_stop
echo "PASS: httpd_proxy_balance"
