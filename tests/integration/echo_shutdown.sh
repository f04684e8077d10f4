#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Graceful shutdown: with connections open, SIGINT and SIGTERM each make
# coil-echo exit with status 0 within a few seconds: first with 200 idle
# connections, then with 200 idle plus 50 connections in mid-transfer.
#
# usage: echo_shutdown.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init echo_shutdown "$@"
require_nofile 400

# coil-echo drains for up to 5 s before it gives up on slow peers; allow
# that plus margin. Sanitized builds also run the leak check at exit.
GRACE=10
[ "$SANITIZED" = 1 ] && GRACE=20

established_at_least() { [ "$(server_established)" -ge "$1" ]; }

# Round 1: idle connections only, SIGINT.
start_server --cores 2
start_idle 200
T0=$(now_ms)
kill -INT "$SERVER_PID"
wait_exit "$SERVER_PID" "$GRACE" || fail "coil-echo still running ${GRACE} s after SIGINT with 200 idle connections"
RC=0
wait "$SERVER_PID" || RC=$?
SERVER_PID=
check_server_log
[ "$RC" -eq 0 ] || fail "coil-echo exited with status $RC after SIGINT (want 0)"
echo "SIGINT with 200 idle connections: exit 0 in $(($(now_ms) - T0)) ms"
release_idle

# Round 2: idle connections plus data in flight, SIGTERM.
start_server --cores 2
start_idle 200
"$ECHO_INTEGRITY" --addr 127.0.0.1 --port "$SERVER_PORT" --conns 50 --waves 100000 \
	--msgs 1000 --min-size 1 --max-size 65536 --timeout 60 >"$TMP_DIR/busy.out" 2>&1 &
BUSY_PID=$!
BG_PIDS+=("$BUSY_PID")
wait_for 10 established_at_least 250 ||
	fail "only $(server_established) connections established, want 250"
sleep 0.5 # let data flow
kill -0 "$BUSY_PID" 2>/dev/null || { cat "$TMP_DIR/busy.out"; fail "echo-integrity stopped early"; }
stop_server "$GRACE"
# The traffic client now sees its connections end; it must notice and stop.
wait_exit "$BUSY_PID" 10 || fail "echo-integrity did not stop after the server exited"
wait "$BUSY_PID" || true
release_idle

echo "PASS: echo_shutdown"
