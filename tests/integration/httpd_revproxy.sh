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
# (back-pressure); curl sees the same through the proxy as upstream. With
# nginx installed, also in front of nginx serving the root (/ngx/ -> /):
# a 5 MiB file byte-identical 20 times over at most 2 upstream connections.
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

# nginx as a second upstream, serving the root; its access log names the
# connection of each request (proof of reuse from its side).
NGX_ARGS=()
if command -v nginx >/dev/null; then
	NGX=$TMP_DIR/nginx
	mkdir -p "$NGX"
	NGX_PORT=$(free_port)
	{
		nginx_preamble "$NGX"
		cat <<CONF
	log_format conn '\$connection \$status \$request';
	server {
		listen 127.0.0.1:$NGX_PORT;
		root $ROOT;
		keepalive_requests 10000;
		access_log $NGX/access.log conn;
	}
}
CONF
	} >"$NGX/nginx.conf"
	nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" </dev/null >"$NGX/stdout" 2>&1 &
	BG_PIDS+=($!)
	wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/hello.txt" ||
		fail "nginx did not start: $(cat "$NGX/error.log" "$NGX/stdout")"
	NGX_ARGS=(--proxy "/ngx/=http://127.0.0.1:$NGX_PORT/")
else
	echo "nginx not installed (nginx-light): the nginx upstream part is left out"
fi

httpd_start --cores 1 --proxy "/up/=http://127.0.0.1:$UPORT" \
	--proxy "/dead/=http://127.0.0.1:$DEAD" --proxy-timeout 1000 \
	--proxy-conns 4 "${NGX_ARGS[@]}"

if [ -n "${NGX_PORT:-}" ]; then
	for i in $(seq 20); do
		ccurl -o "$TMP_DIR/ngx.$i" "$BASE/ngx/big.bin"
		cmp -s "$TMP_DIR/ngx.$i" "$ROOT/big.bin" || fail "nginx upstream: big.bin #$i differs"
	done
	ccurl -D "$TMP_DIR/h" -o /dev/null "$BASE/ngx/nothing-here"
	[ "$(status_of "$TMP_DIR/h")" = 404 ] || fail "nginx upstream: a 404 came back as $(status_of "$TMP_DIR/h")"
	conns=$(awk '/ \/big.bin / {print $1}' "$NGX/access.log" | sort -u | wc -l)
	reqs=$(grep -c ' /big.bin ' "$NGX/access.log" || true)
	echo "nginx upstream: $reqs requests for big.bin on $conns connection(s)"
	[ "$reqs" -eq 20 ] || fail "nginx saw $reqs requests for /big.bin (want 20: the prefix is replaced by /)"
	[ "$conns" -le 2 ] || fail "nginx saw $conns connections (want <= 2: keep-alive upstreams)"
fi

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
