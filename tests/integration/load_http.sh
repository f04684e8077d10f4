#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-load http against coil-httpd and nginx: status counts equal the
# responses (200s for /plaintext, 404s for a missing file, with exit 1),
# pipelining (depth 8) completes every response in order, HEAD responses
# carry no body, --close opens one connection per request, nginx's chunked
# (gzip) responses parse, and the open loop (--rate) holds its target rate
# within 5% on a server with spare capacity, also above connections x
# 1000/s, and refuses a rate its connections cannot carry.
#
# usage: load_http.sh <coil-httpd>  (COIL_LOAD set)
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
source "$(dirname "$0")/load_lib.sh"
httpd_init load_http "$@"
load_check_tool

httpd_start --cores 2
run_load 0 http "$BASE/plaintext" -c 20 -d 2 -t 2
expect "responses" 'j["done"] > 1000'
expect "every response a 200" 'j["status"] == {"200": j["done"]}'
expect "no errors" 'j["errors"]["total"] == 0'
expect "one request in flight per connection at most" '0 <= j["sent"] - j["done"] <= 20'

run_load 0 http "$BASE/plaintext" -c 10 -d 2 -t 1 --pipeline 8
expect "pipelined responses all 200" 'j["done"] > 1000 and j["status"] == {"200": j["done"]}'
expect "at most 8 in flight per connection" '0 <= j["sent"] - j["done"] <= 80'
expect "pipelined: no errors" 'j["errors"]["total"] == 0'

run_load 1 http "$BASE/no-such-file" -c 4 -d 1 -t 1
expect "404s counted, nothing else" 'j["done"] > 0 and j["status"] == {"404": j["done"]} and j["errors"]["status_4xx_5xx"] == j["done"]'

run_load 0 http "$BASE/hello.txt" -c 4 -d 1 -t 1 --method HEAD
expect "HEAD: 200s without bodies" 'j["done"] > 0 and j["status"] == {"200": j["done"]} and j["errors"]["invalid"] == 0'

run_load 0 http "$BASE/plaintext" -c 4 -d 1 -t 1 --close
expect "--close: a connection per request" 'j["done"] > 100 and j["connections_established"] >= j["done"] and j["errors"]["total"] == 0'

# Open loop: 2000 requests/s on a server that does far more.
run_load 0 http "$BASE/plaintext" -c 10 -d 3 -t 1 --rate 2000
expect "open loop sent 2000/s within 5%" 'abs(j["sent"] / j["elapsed_s"] - 2000) <= 100'
expect "open loop answered 2000/s within 5%" 'abs(j["per_second"] - 2000) <= 100'
expect "latency from the intended send time" 'j["latency_ns"]["from"] == "intended send time"'

# Open loop above connections x 1000/s: 2 connections at 6000/s, 3000/s
# each (a 1 ms tick issuing one request per connection capped this at
# 2000/s): a due request goes out as soon as a response frees a connection.
run_load 0 http "$BASE/plaintext" -c 2 -d 3 -t 1 --rate 6000
expect "open loop, 3000/s per connection: sent 6000/s within 5%" 'abs(j["sent"] / j["elapsed_s"] - 6000) <= 300'
expect "open loop, 3000/s per connection: answered 6000/s within 5%" 'abs(j["per_second"] - 6000) <= 300'
expect "open loop, 3000/s per connection: no errors" 'j["errors"]["total"] == 0'

# A rate the connections cannot carry (one request in flight each, a round
# trip of at least 100 us: 10,000/s per connection) is refused at start.
rc=0
out=$("$COIL_LOAD" http "$BASE/plaintext" -c 2 -d 1 -t 1 --rate 20001 --quiet 2>&1) || rc=$?
echo "$out"
[ "$rc" -eq 2 ] || fail "--rate 20001 with 2 connections exited $rc, want 2"
grep -q "cannot be reached with 2 connections.*use -c 3 or more" <<<"$out" ||
	fail "--rate 20001 with 2 connections: no reason given: $out"
run_load 0 http "$BASE/plaintext" -c 2 -d 1 -t 1 --rate 20000
echo "ok: --rate 20000 with 2 connections is accepted (and runs)"
httpd_alive
httpd_stop

# nginx: /plaintext with `return 200`, and a gzip'd file (chunked).
need_tool nginx nginx-light
NGX=$TMP_DIR/nginx
mkdir -p "$NGX/html"
head -c 20000 /dev/zero | tr '\0' 'a' >"$NGX/html/big.txt"
for _ in 1 2 3 4 5; do
	NGX_PORT=$(free_port)
	{
		nginx_preamble "$NGX"
		cat <<CONF
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NGX_PORT;
		root $NGX/html;
		gzip on;
		gzip_min_length 0;
		gzip_types text/plain;
		location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
	}
}
CONF
	} >"$NGX/nginx.conf"
	nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" </dev/null >"$NGX/stdout" 2>&1 &
	NGX_PID=$!
	BG_PIDS+=("$NGX_PID")
	if wait_for 10 curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$NGX_PORT/plaintext"; then
		break
	fi
	kill -TERM "$NGX_PID" 2>/dev/null || true
	wait "$NGX_PID" 2>/dev/null || true
	NGX_PID=
done
[ -n "${NGX_PID:-}" ] || fail "nginx did not start"
NBASE=http://127.0.0.1:$NGX_PORT
run_load 0 http "$NBASE/plaintext" -c 10 -d 2 -t 1
expect "nginx: every response a 200" 'j["done"] > 500 and j["status"] == {"200": j["done"]} and j["errors"]["total"] == 0'
run_load 0 http "$NBASE/plaintext" -c 10 -d 2 -t 1 --pipeline 8
expect "nginx pipelined: every response a 200" 'j["done"] > 500 and j["status"] == {"200": j["done"]} and j["errors"]["total"] == 0'
curl -s -D "$TMP_DIR/h" -o /dev/null -H 'Accept-Encoding: gzip' "$NBASE/big.txt"
grep -qi '^transfer-encoding: chunked' "$TMP_DIR/h" || fail "nginx did not answer /big.txt chunked: $(cat "$TMP_DIR/h")"
run_load 0 http "$NBASE/big.txt" -c 4 -d 2 -t 1 --pipeline 4 -H 'Accept-Encoding: gzip'
expect "nginx chunked (gzip) responses parsed" 'j["done"] > 100 and j["status"] == {"200": j["done"]} and j["errors"]["invalid"] == 0 and j["errors"]["total"] == 0'
kill -TERM "$NGX_PID"
wait_exit "$NGX_PID" 10 || fail "nginx did not exit"
echo "PASS: load_http"
