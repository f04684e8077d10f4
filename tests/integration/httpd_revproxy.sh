#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-httpd as a reverse proxy (--proxy) in front of a Python HTTP/1.1
# upstream (revproxy.py): pool reuse proven (200 keep-alive requests, at
# most 4 upstream connections, counted by the upstream), hop-by-hop fields
# dropped both ways, X-Forwarded-For / X-Forwarded-Proto / Via, Set-Cookie
# repeated, bodies byte-identical both ways (a 3 MiB chunked answer), a slow
# upstream -> 504 after --proxy-timeout, an upstream dying mid-body -> the
# client's answer is cut (no hang), nothing listening -> 502, a slow reader
# of 128 MiB gets it byte-identical with the proxy's RSS bounded
# (back-pressure); curl sees the same through the proxy as upstream.
#
# usage: httpd_revproxy.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_revproxy "$@"
need_tool curl curl

HERE=$(dirname "$0")
"$PY" "$HERE/revproxy.py" upstream "$TMP_DIR/up.port" </dev/null &
BG_PIDS+=($!)
wait_for 10 test -s "$TMP_DIR/up.port" || fail "the upstream did not start"
UPORT=$(cat "$TMP_DIR/up.port")
DEAD=$(free_port)

httpd_start --cores 1 --proxy "/up/=http://127.0.0.1:$UPORT" \
	--proxy "/dead/=http://127.0.0.1:$DEAD" --proxy-timeout 1000 \
	--proxy-conns 4

"$PY" "$HERE/revproxy.py" client "$SERVER_PORT" "$UPORT" "$SERVER_PID" ||
	fail "revproxy.py client checks failed (see above)"

# curl: the same bytes as from the upstream directly
ccurl -o "$TMP_DIR/direct" "http://127.0.0.1:$UPORT/up/big?n=1000000"
ccurl -D "$TMP_DIR/h" -o "$TMP_DIR/proxied" "$BASE/up/big?n=1000000"
cmp "$TMP_DIR/direct" "$TMP_DIR/proxied" || fail "curl: proxied bytes differ"
[ "$(status_of "$TMP_DIR/h")" = 200 ] || fail "curl: status $(status_of "$TMP_DIR/h")"
[ "$(header Via "$TMP_DIR/h")" = "1.1 coil" ] || fail "curl: Via '$(header Via "$TMP_DIR/h")'"
grep -q "proxy /up/: upstream 127.0.0.1:$UPORT: Connection timed out" "$SERVER_LOG" ||
	fail "the 504 was not logged with its reason"
grep -q "proxy /dead/: upstream 127.0.0.1:$DEAD: Connection refused" "$SERVER_LOG" ||
	fail "the 502 was not logged with its reason"
httpd_stop
echo "PASS: httpd_revproxy"
