#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kernel bypass end to end for HTTP: coil-load http --dpdk against
# coil-httpd --dpdk over a kernel-free link (net_memif between the two
# processes; scripts/tools/bypass-link). coil's own TCP on both ends.
#
#  1. GET /plaintext on 1 and 50 connections, keep-alive and pipelined
#     (depth 16), GET /json, POST /echo with a 20 KiB body, one request per
#     connection (--close) and the open loop (--rate): every response 200,
#     none invalid (coil-load parses each status line, header and
#     Content-Length / chunked framing), no errors;
#  2. framing across error answers: GET of a missing path is 404 on every
#     request of kept-alive, pipelined connections, with no invalid
#     response, and coil-load exits 1 for them;
#  3. the server stopped (SIGTERM) mid-load: it drains and exits 0, and
#     coil-load ends on its own with the failure in its figures, not a
#     hang.
# Each coil-load run is bounded by `timeout`; the whole test takes ~30 s.
set -euo pipefail
. "$(dirname "$0")/httpd_lib.sh"   # (sources lib.sh) httpd_stop
lib_init bypass_http "$@"
. "$(dirname "$0")/bypass_lib.sh"
COIL_HTTPD=${COIL_HTTPD:-}
[ -x "$COIL_HTTPD" ] || fail "COIL_HTTPD is not an executable: '$COIL_HTTPD'"
bypass_up memif
PORT=8080
URL=http://$BYPASS_SERVER_IP:$PORT

bypass_server coil-httpd "$COIL_HTTPD" "$PORT" --drain-ms 3000

# check_http LABEL STATUS CONNS: the last bypass_load got only STATUS, parsed
# cleanly, on at least CONNS connections.
check_http() {
	local label=$1 want=$2 conns=$3 r
	r=$(json_get "$LOAD_JSON" \
		'"%d %d %d %d %d" % (j["done"], j["status"].get("'"$want"'", 0), j["errors"]["invalid"], j["errors"]["total"] - j["errors"]["status_4xx_5xx"], j["connections_established"])' \
		2>/dev/null) || { echo "$LOAD_OUT"; cat "$TMP_DIR/$label.err"; fail "$label: no JSON from coil-load (exit $LOAD_RC)"; }
	read -r n got invalid errs est <<<"$r"
	echo "$label: $n responses, $got x $want, $invalid invalid, $errs other errors, $est connections (exit $LOAD_RC)"
	[ "$n" -gt 0 ] || fail "$label: no responses"
	[ "$got" -eq "$n" ] || { echo "$LOAD_OUT"; fail "$label: $got of $n responses were $want"; }
	[ "$invalid" -eq 0 ] || fail "$label: $invalid invalid responses"
	[ "$errs" -eq 0 ] || { echo "$LOAD_OUT"; fail "$label: $errs errors"; }
	[ "$est" -ge "$conns" ] || fail "$label: $est of $conns connections established"
	if [ "$want" -lt 400 ]; then
		[ "$LOAD_RC" -eq 0 ] || fail "$label: coil-load exited $LOAD_RC"
	else
		[ "$LOAD_RC" -eq 1 ] || fail "$label: coil-load exited $LOAD_RC for $want answers (want 1)"
	fi
}

echo "== 1. 200s: keep-alive, pipelined, /json, POST, --close, open loop"
bypass_load plain-1 20 http "$URL/plaintext" -c 1 -d 1s
check_http plain-1 200 1
bypass_load plain-50 20 http "$URL/plaintext" -c 50 -d 1s
check_http plain-50 200 50
bypass_load plain-pipe 20 http "$URL/plaintext" -c 50 --pipeline 16 -d 1s
check_http plain-pipe 200 50
bypass_load json 20 http "$URL/json" -c 10 -d 1s
check_http json 200 10
head -c 20480 /dev/urandom >"$TMP_DIR/body"
bypass_load post 20 http "$URL/echo" -c 10 --method POST --body "$TMP_DIR/body" -d 1s
check_http post 200 10
rx=$(json_get "$LOAD_JSON" 'j["rx_bytes"] // j["done"]')
[ "$rx" -gt 20480 ] || fail "post: $rx bytes per answer: the 20 KiB body did not come back"
bypass_load close 20 http "$URL/plaintext" -c 10 --close -d 1s
check_http close 200 10
bypass_load rate 20 http "$URL/plaintext" -c 10 --rate 2000 -d 2s
check_http rate 200 10
done_rate=$(json_get "$LOAD_JSON" 'j["done"]')
[ "$done_rate" -ge 3000 ] && [ "$done_rate" -le 4400 ] ||
	fail "rate: $done_rate responses in 2 s at 2000/s"
p99=$(json_get "$LOAD_JSON" 'j["latency_ns"]["p99"]')
echo "rate: $done_rate responses, p99 $((p99 / 1000)) us"

echo "== 2. 404s keep their framing"
bypass_load missing 20 http "$URL/no/such/thing" -c 20 --pipeline 4 -d 1s
check_http missing 404 20
check_server_alive

echo "== 3. SIGTERM mid-load"
# (no `timeout` wrapper: the load must end by itself; wait below bounds it)
bypass_load_bg term 0 http "$URL/plaintext" -c 50 -d 8s --timeout 1000
# 2 s into the run, which starts once the link is up (EAL start-up takes
# seconds on a loaded machine)
wait_for 30 grep -q "link up" "$TMP_DIR/term.err" ||
	fail "coil-load's link did not come up within 30 s"
sleep 2
bypass_stop_server
t0=$(now_ms)
wait_exit "$LOAD_PID" 20 || fail "coil-load still running 20 s after its server stopped"
rc=0
wait "$LOAD_PID" || rc=$?
BG_PIDS=()
cat "$TMP_DIR/term.out"
echo "coil-load ended $(($(now_ms) - t0)) ms after the server, status $rc"
[ "$rc" -eq 1 ] || fail "coil-load exited $rc with its server gone (want 1: errors)"
lost=$(json_get "$TMP_DIR/term.json" 'j["errors"]["total"]')
[ "$lost" -gt 0 ] || fail "coil-load reported no errors with its server gone"
echo "PASS: bypass_http"
