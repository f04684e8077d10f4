#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hardening against what nginx survives (issue 18), with httpd_harden.py:
#  - SIGTERM: connections accepted but not answered yet (fresh ones, and a
#    churn of Connection: close clients) all get their request answered
#    within the drain; only idle keep-alive connections close at once;
#  - an idle keep-alive connection (answered once) keeps no send chunk:
#    RSS per connection stays near its records, and no chunk comes from
#    the heap on the request path;
#  - --max-headers is honoured up to its documented ceiling (1024), and a
#    value above it is refused at start;
#  - a storm of header timeouts closes silently and does not stall the loop;
#  - concurrent large uploads keep the server's peak RSS bounded;
#  - --send-timeout resets a download whose client stopped reading after
#    that time without progress, and spares a slow but steady reader.
# The full-size figures next to nginx: scripts/bench hardening.
#
# usage: httpd_harden.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_harden "$@"

N_IDLE=${COIL_HARDEN_IDLE:-3000}
harden() {
	timeout -k 5 120 "$PY" "$HTTPD_DIR/httpd_harden.py" "$1" --port "$SERVER_PORT" \
		--pid "$SERVER_PID" --root "$ROOT" "${@:2}"
}
# after_sigterm: the server was sent SIGTERM by the client: it must exit 0.
after_sigterm() {
	wait_exit "$SERVER_PID" 15 || fail "coil-httpd did not exit after SIGTERM"
	local rc=0
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	check_server_log
	[ "$rc" -eq 0 ] || fail "coil-httpd exited $rc after SIGTERM"
}
failed=()

httpd_start --cores 1
harden sigterm-fresh --conns 20 || failed+=(sigterm-fresh)
after_sigterm

httpd_start --cores 1
harden sigterm-churn --threads 8 --before 1.0 || failed+=(sigterm-churn)
after_sigterm

# Idle keep-alive memory: the records only (coil_conn 288 B + httpd_conn
# 192 B without an access log, in a 480 B slab slot on x86-64: ~480 B
# measured; 832 B before the request part was taken only while busy), no
# send chunk kept (5.4 KB each before), and no heap chunk taken on the
# request path (COIL_STATS counts them). nginx: ~525 B, the issue's target.
# At this test's 3,000 connections RSS moves in pages and slab chunks:
# 629 B was seen once on a loaded 2-core machine (480 B at 15,000 in the
# bench), so the limit sits between that and the old 832 B slot.
if [ "$SANITIZED" != 1 ]; then   # ASan's shadow memory makes RSS meaningless
	COIL_STATS=1 httpd_start --cores 1
	harden idle-memory --conns "$N_IDLE" --limit 720 || failed+=(idle-memory)
	httpd_stop
	grep -q 'from the heap (slabs used up): 0 chunks, 0 segments' "$SERVER_LOG" ||
		{ grep 'from the heap' "$SERVER_LOG"; failed+=(heap-chunks); }
fi

httpd_start --cores 1
harden headers --count 100 --want 431 || failed+=(headers-default)
httpd_stop
httpd_start --cores 1 --max-headers 300
harden headers --count 250 --want 200 || failed+=(headers-250)
harden headers --count 301 --want 431 || failed+=(headers-301)
httpd_stop
rc=0
"$COIL_HTTPD" --port 0 --max-headers 1025 2>"$TMP_DIR/refuse.log" </dev/null || rc=$?
[ "$rc" -eq 2 ] && grep -q max-headers "$TMP_DIR/refuse.log" ||
	{ echo "--max-headers 1025: exit $rc, want 2 with a message"; failed+=(headers-ceiling); }

# Before --send-timeout existed, the stalled download went after the
# keep-alive timeout twice (16 s here).
httpd_start --cores 1 --send-timeout 1500 --keepalive-timeout 8000 --header-timeout 8000
harden send-timeout --send-timeout-ms 1500 --limit-s 3 || failed+=(send-timeout)
httpd_stop

# A timeout storm: N_STORM incomplete heads fall due together. Each closes
# without an answer (nginx does the same; composing thousands of 408s in
# one turn stalled the loop 0.2-0.4 s), and the timer work is spread over
# turns, so the good client on the same loop is never held up for long
# (full size next to nginx: scripts/bench hardening; the bound here is
# loose because this machine is shared).
N_STORM=${COIL_HARDEN_STORM:-2000} MAX_STALL=1000
[ "$SANITIZED" = 1 ] && N_STORM=${COIL_HARDEN_STORM:-500} MAX_STALL=3000
httpd_start --cores 1 --header-timeout 2000
harden storm --conns "$N_STORM" --timeout-ms 2000 --silent --max-stall-ms $MAX_STALL --verbose ||
	failed+=(storm)
httpd_stop

# Large uploads at once: N_UP/2 Content-Length and N_UP/2 chunked uploads of
# 4 MiB to /echo, every byte back intact, and the server's peak RSS within
# 32 MiB (input held while a receive's cancel is in flight once came from
# the heap, up to a receive pool per connection: 52 MiB here on io_uring,
# 100+ MiB for 70 uploads of 8 MiB; epoll ~9 MiB).
N_UP=${COIL_HARDEN_UPLOADS:-30}
if [ "$SANITIZED" != 1 ] && command -v curl >/dev/null; then
	head -c $((4 << 20)) /dev/urandom >"$TMP_DIR/up.bin"
	httpd_start --cores 1 --max-body 16M
	pids=()
	for i in $(seq "$N_UP"); do
		te=()
		[ $((i % 2)) = 0 ] && te=(-H "Transfer-Encoding: chunked")
		(timeout -k 5 120 curl -sS "${te[@]}" --data-binary @"$TMP_DIR/up.bin" \
			"$BASE/echo" | cmp -s - "$TMP_DIR/up.bin" && echo ok) >>"$TMP_DIR/up.out" &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	up_ok=$(grep -c ok "$TMP_DIR/up.out" || true)
	peak=$(awk '/VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")
	echo "uploads: $up_ok of $N_UP intact, peak RSS $peak kB"
	[ "$up_ok" = "$N_UP" ] || failed+=(uploads-intact)
	[ "$peak" -le $((32 << 10)) ] || failed+=(uploads-peak-rss)
	httpd_stop
fi

[ ${#failed[@]} -eq 0 ] || fail "failed: ${failed[*]}"
echo "PASS: httpd_harden"
