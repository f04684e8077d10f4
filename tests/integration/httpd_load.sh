#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Short runs of the usual HTTP load tools against coil-httpd on two loops:
# ab -k (HTTP/1.0 keep-alive), h2load --h1 (with 8-deep pipelining) and
# wrk (plain, and 16 requests per write from a Lua script), on /plaintext,
# /json, a static file and the 5 MiB file. Every run must complete with no
# failed, non-2xx or socket-error requests, and the server must stay up.
#
# usage: httpd_load.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_load "$@"
need_tool ab apache2-utils
need_tool h2load nghttp2-client
need_tool wrk wrk

N=20000
[ "$SANITIZED" = 1 ] && N=5000
httpd_start --cores 2

# run_ab <path> <n> <c>
run_ab() {
	local path=$1 n=$2 c=$3 out rc=0
	out=$(timeout -k 5 60 ab -q -k -n "$n" -c "$c" -s 10 "$BASE$path" 2>&1) || rc=$?
	httpd_alive
	[ "$rc" -eq 0 ] || { echo "$out"; fail "ab -k -n $n -c $c $path exited with status $rc"; }
	grep -q "^Complete requests: *$n\$" <<<"$out" || { echo "$out"; fail "ab $path: not all $n requests completed"; }
	grep -q '^Failed requests: *0$' <<<"$out" || { echo "$out"; fail "ab $path: failed requests"; }
	! grep -q '^Non-2xx responses' <<<"$out" || { echo "$out"; fail "ab $path: non-2xx responses"; }
	grep -q "^Keep-Alive requests: *$n\$" <<<"$out" || { echo "$out"; fail "ab $path: not every request was kept alive (HTTP/1.0 keep-alive)"; }
	echo "ab -k -n $n -c $c $path: $(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$out") req/s, all kept alive, 0 failed"
}

# run_h2load <path> <n> <c> <m>
run_h2load() {
	local path=$1 n=$2 c=$3 m=$4 out rc=0
	out=$(timeout -k 5 60 h2load --h1 -n "$n" -c "$c" -m "$m" -T 10 "$BASE$path" 2>&1) || rc=$?
	httpd_alive
	[ "$rc" -eq 0 ] || { echo "$out"; fail "h2load --h1 -n $n -c $c -m $m $path exited with status $rc"; }
	grep -q "^requests: $n total, $n started, $n done, $n succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out" ||
		{ echo "$out"; fail "h2load --h1 -m $m $path: not all $n requests succeeded"; }
	grep -q "^status codes: $n 2xx, 0 3xx, 0 4xx, 0 5xx" <<<"$out" ||
		{ echo "$out"; fail "h2load --h1 -m $m $path: non-2xx responses"; }
	echo "h2load --h1 -n $n -c $c -m $m $path: $(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out") req/s, all 2xx"
}

# run_wrk <path> <threads> <conns> <secs> [lua script]
run_wrk() {
	local path=$1 t=$2 c=$3 d=$4 script=${5:-} out rc=0 n
	out=$(timeout -k 5 60 wrk -t"$t" -c"$c" -d"${d}s" --timeout 5s ${script:+-s "$script"} "$BASE$path" 2>&1) || rc=$?
	httpd_alive
	[ "$rc" -eq 0 ] || { echo "$out"; fail "wrk $path exited with status $rc"; }
	! grep -q 'Socket errors' <<<"$out" || { echo "$out"; fail "wrk -c$c $path${script:+ ($script)}: socket errors"; }
	! grep -q 'Non-2xx or 3xx' <<<"$out" || { echo "$out"; fail "wrk -c$c $path${script:+ ($script)}: non-2xx responses"; }
	n=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$out")
	[ "${n:-0}" -gt 0 ] || { echo "$out"; fail "wrk $path: no requests completed"; }
	echo "wrk -t$t -c$c -d${d}s $path${script:+ (pipelined 16)}: $n requests, $(sed -n 's/^Requests\/sec: *//p' <<<"$out") req/s, no errors"
}

run_ab /plaintext "$N" 20
run_ab /hello.txt "$N" 20
run_h2load /plaintext "$N" 20 1
run_h2load /json "$N" 20 8
run_h2load /hello.txt "$N" 10 8
cat >"$TMP_DIR/pipeline.lua" <<'LUA'
-- 16 requests per write (wrk counts each response).
init = function(args)
	local r = {}
	for i = 1, 16 do r[i] = wrk.format(nil, wrk.path) end
	req = table.concat(r)
end
request = function() return req end
LUA
run_wrk /plaintext 2 50 2
run_wrk /json 2 50 1
run_wrk /index.html 2 50 1
run_wrk /plaintext 2 50 2 "$TMP_DIR/pipeline.lua"
run_wrk /big.bin 1 4 1

gone() { [ "$(server_established)" -eq 0 ]; }
wait_for 10 gone || fail "$(server_established) connections still established 10 s after the load"
httpd_stop
echo "PASS: httpd_load"
