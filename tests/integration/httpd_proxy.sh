#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nginx as a reverse proxy in front of coil-httpd: an upstream with
# `keepalive 16`, proxy_http_version 1.1 and an empty Connection header, as
# production setups do. Through the proxy: /plaintext, /json, the 5 MiB file
# byte-identical (several times, and a Range of it), 304, 404, and an ab -k
# run; nginx must keep reusing its upstream connections (coil-httpd holds
# at most 16 of them) and must log no upstream errors.
#
# usage: httpd_proxy.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_proxy "$@"
need_tool curl curl
need_tool nginx nginx-light
need_tool ab apache2-utils

httpd_start --cores 2

NGX=$TMP_DIR/nginx
mkdir -p "$NGX/logs"
# start_nginx: nginx in the foreground, one process (no user switch, so no
# permission trouble with the temp dirs), on a port that was free just now;
# retried if another process took the port meanwhile.
start_nginx() {
	for _ in 1 2 3 4 5; do
		NGX_PORT=$(free_port)
		{
			nginx_preamble "$NGX"
			cat <<CONF
	upstream coil {
		server 127.0.0.1:$SERVER_PORT;
		keepalive 16;
	}
	server {
		listen 127.0.0.1:$NGX_PORT;
		location / {
			proxy_pass http://coil;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering on;
		}
	}
}
CONF
		} >"$NGX/nginx.conf"
		: >"$NGX/error.log"
		nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" </dev/null >"$NGX/stdout" 2>&1 &
		NGX_PID=$!
		BG_PIDS+=("$NGX_PID")
		local deadline=$((SECONDS + 10))
		while [ $SECONDS -lt $deadline ]; do
			if ! kill -0 "$NGX_PID" 2>/dev/null; then
				break
			fi
			if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$NGX_PORT/plaintext"; then
				echo "nginx (pid $NGX_PID) proxying 127.0.0.1:$NGX_PORT -> coil-httpd :$SERVER_PORT"
				return 0
			fi
			sleep 0.1
		done
		kill -TERM "$NGX_PID" 2>/dev/null || true
		wait "$NGX_PID" 2>/dev/null || true
		grep -q 'Address already in use' "$NGX/error.log" "$NGX/stdout" || {
			cat "$NGX/error.log" "$NGX/stdout"
			fail "nginx did not start"
		}
	done
	fail "nginx found no free port in 5 tries"
}
start_nginx
PROXY=http://127.0.0.1:$NGX_PORT
H=$TMP_DIR/h B=$TMP_DIR/b
get() {
	local url=$1
	shift
	rm -f "$H" "$B"
	ccurl -D "$H" -o "$B" "$@" "$url" || fail "curl $* $url (through nginx) failed"
	status_of "$H"
}

expect_eq "GET /plaintext through nginx" "$(get "$PROXY/plaintext")" 200
expect_eq "GET /plaintext through nginx: body" "$(cat "$B")" "Hello, World!"
expect_eq "GET /json through nginx" "$(get "$PROXY/json")" 200
expect_eq "GET /json through nginx: body" "$(cat "$B")" '{"message":"Hello, World!"}'
expect_eq "GET /no-such-file through nginx" "$(get "$PROXY/no-such-file")" 404
for i in 1 2 3; do
	expect_eq "GET /big.bin through nginx ($i)" "$(get "$PROXY/big.bin")" 200
	cmp "$B" "$ROOT/big.bin" || fail "GET /big.bin through nginx ($i): differs from the file"
done
echo "ok: /plaintext, /json, 404, and the 5 MiB file byte-identical 3 times through nginx"
expect_eq "GET /big.bin Range: bytes=100-199 through nginx" "$(get "$PROXY/big.bin" -r 100-199)" 206
dd if="$ROOT/big.bin" of="$TMP_DIR/want" iflag=skip_bytes,count_bytes skip=100 count=100 status=none
cmp -s "$B" "$TMP_DIR/want" || fail "Range: bytes=100-199 through nginx: wrong bytes"
get "$PROXY/hello.txt" >/dev/null
ETAG=$(header etag "$H")
expect_eq "GET /hello.txt with If-None-Match through nginx" \
	"$(get "$PROXY/hello.txt" -H "If-None-Match: $ETAG")" 304
echo "ok: Range and 304 through nginx"

# Sequential requests, each on a new client connection to nginx: nginx must
# reuse one kept-alive upstream connection, so coil-httpd sees one.
for i in $(seq 1 50); do
	ccurl -o /dev/null "$PROXY/plaintext" || fail "request $i through nginx failed"
done
n=$(server_established)
{ [ "$n" -ge 1 ] && [ "$n" -le 2 ]; } ||
	fail "after 50 sequential proxied requests coil-httpd holds $n connections, want 1 (upstream keep-alive)"
echo "ok: 50 sequential requests through nginx on $n upstream connection(s)"

N=5000
out=$(timeout -k 5 60 ab -q -k -n $N -c 32 -s 10 "$PROXY/plaintext" 2>&1) || { echo "$out"; fail "ab through nginx failed"; }
grep -q '^Failed requests: *0$' <<<"$out" || { echo "$out"; fail "ab through nginx: failed requests"; }
! grep -q '^Non-2xx responses' <<<"$out" || { echo "$out"; fail "ab through nginx: non-2xx responses"; }
n=$(server_established)
[ "$n" -le 16 ] || fail "coil-httpd holds $n upstream connections after ab -c 32, want <= 16 (keepalive 16)"
echo "ok: ab -k -n $N -c 32 through nginx: 0 failed, $(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$out") req/s; coil-httpd holds $n upstream connections"

httpd_alive
if grep -E '\[(error|crit|alert|emerg)\]' "$NGX/error.log"; then
	fail "nginx logged errors (above)"
fi
kill -TERM "$NGX_PID"
wait_exit "$NGX_PID" 10 || fail "nginx did not exit"
httpd_stop
echo "PASS: httpd_proxy"
