#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-load echo: --verify against coil-echo sees every byte come back
# intact (0 mismatches, exit 0) with small and large messages, several in
# flight; against a server that flips one byte in every 1000 (corrupt_echo.py)
# it reports the mismatches and exits 1; against a closed port it counts
# connect errors, exits 1 and still stops on time.
#
# usage: load_echo.sh <coil-echo> <echo-integrity> <idle-conns>  (COIL_LOAD set)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/load_lib.sh"
lib_init load_echo "$@"
load_check_tool

start_server --cores 2
run_load 0 echo "127.0.0.1:$SERVER_PORT" -c 20 -d 2 -t 2 --size 1000 --depth 4 --verify
expect "20 connections established" 'j["connections_established"] == 20'
expect "messages echoed" 'j["done"] > 1000'
expect "no mismatches, no errors" 'j["errors"]["mismatched_bytes"] == 0 and j["errors"]["total"] == 0'
expect "at most depth x connections in flight at the end" '0 <= j["sent"] - j["done"] <= 80'
expect "bytes add up" 'j["rx_bytes"] >= j["done"] * 1000'
expect "latency percentiles ordered" 'j["latency_ns"]["p50"] <= j["latency_ns"]["p99"] <= j["latency_ns"]["max"]'

run_load 0 echo "127.0.0.1:$SERVER_PORT" -c 4 -d 2 -t 1 --size 200K --depth 2 --verify
expect "large messages echoed intact" 'j["done"] > 10 and j["errors"]["total"] == 0'
check_server_alive
stop_server

# A server that corrupts: every mismatch is found.
"$PY" "$(dirname "$0")/corrupt_echo.py" --every 1000 >"$TMP_DIR/corrupt.log" 2>&1 &
CPID=$!
BG_PIDS+=("$CPID")
wait_for 10 grep -q 'listening on' "$TMP_DIR/corrupt.log" || fail "corrupt_echo.py did not start"
CPORT=$(sed -n 's/^corrupt-echo: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP_DIR/corrupt.log")
run_load 1 echo "127.0.0.1:$CPORT" -c 4 -d 2 -t 1 --size 500 --depth 2 --verify
expect "mismatches detected" 'j["errors"]["mismatched_bytes"] > 0'
# one flipped byte per 1000 echoed: the count matches what came back
expect "one per 1000 bytes" 'abs(j["errors"]["mismatched_bytes"] - j["rx_bytes"] // 1000) <= 4 * 2'
grep -q 'mismatched bytes [1-9]' <<<"$LOAD_OUT" || fail "the text report does not show the mismatches"

# Nobody listening: connect errors, exit 1, on time.
kill -TERM "$CPID"
wait "$CPID" 2>/dev/null || true
t0=$SECONDS
run_load 1 echo "127.0.0.1:$CPORT" -c 2 -d 1 -t 1
expect "connect errors counted" 'j["errors"]["connect"] > 0 and j["connections_established"] == 0'
[ $((SECONDS - t0)) -le 30 ] || fail "runs against a dead port took $((SECONDS - t0)) s"
echo "PASS: load_echo"
