#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kernel bypass: the server survives its peer going and coming back.
#
# coil-echo --dpdk stays up on the server side of a net_memif link
# (scripts/tools/bypass-link) while coil-load --dpdk on the client side is
# started and stopped again and again, under CPU pressure (a busy loop per
# CPU, so that either process and DPDK's interrupt thread get preempted
# anywhere): two rounds in three coil-load runs 1 s on 500 connections and
# ends by itself (it aborts them all, the server takes in 500 RSTs, and the
# link disconnects while it does), the third it is SIGKILLed mid-load
# (64 KiB messages in flight both ways). Each disconnect unmaps the link's shared rings in the
# server (on DPDK's interrupt thread) and each new client maps new ones;
# before the port gate (engine/backend/dpdk_internal.h) a server polling its
# queue at that moment died of SIGSEGV inside librte_net_memif.
#
# After every round the server must still run, and what a run that ended by
# itself echoed must be intact (zero mismatched bytes, zero errors); at the
# end a coil-load --verify run on a fresh link session must be clean
# (every connection established, messages echoed, zero mismatched bytes,
# zero errors); then SIGTERM, exit 0.
# COIL_BYPASS_ROUNDS (default 20) sets the number of rounds: ~60 s, up to
# ~180 s on a loaded 2-CPU machine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init bypass_reconnect "$@"
. "$(dirname "$0")/bypass_lib.sh"
bypass_up memif
ROUNDS=${COIL_BYPASS_ROUNDS:-20}
PORT=7000
TARGET=$BYPASS_SERVER_IP:$PORT

bypass_server coil-echo "$COIL_ECHO" "$PORT" --drain-ms 2000
cpu_pressure $((ROUNDS * 6 + 30))

for ((i = 1; i <= ROUNDS; i++)); do
	if ((i % 3 == 0)); then
		# killed mid-load, 0.3 .. 1.9 s after it started (its EAL
		# start-up takes part of that: some die before the link is up,
		# some while it comes up, most with traffic in flight)
		"$COIL_LOAD" echo "$TARGET" -c 50 --size 65536 --depth 2 --verify -d 30s \
			--quiet --cores "$BYPASS_CLIENT_CPU" --dpdk "$BYPASS_CLIENT_EAL" \
			--ip "$BYPASS_CLIENT_IP/$BYPASS_PREFIX" >/dev/null 2>&1 &
		pid=$!
		sleep "$((i % 2)).$((3 * i % 10))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "round $i: coil-load killed mid-load"
	else
		# ends by itself: it aborts its 500 connections (500 RSTs for
		# the server to take in) and disconnects the link right after
		bypass_load "round-$i" 30 echo "$TARGET" -c 500 --size 1461 \
			--verify -d 500ms --timeout 5000
		# (how far 500 ms gets on a loaded machine varies: what was
		# echoed must be intact, the rate is not the point)
		[ "$LOAD_RC" -eq 0 ] || {
			cat "$TMP_DIR/round-$i.err"
			fail "round $i: coil-load exited $LOAD_RC"
		}
		json_get "$LOAD_JSON" '"round-%d: %d messages echoed, %d connections" % ('"$i"', j["done"], j["connections_established"])'
		r=$(json_get "$LOAD_JSON" '"%d %d" % (j["errors"]["mismatched_bytes"], j["errors"]["total"])')
		[ "$r" = "0 0" ] || fail "round $i: mismatched bytes, errors: $r"
	fi
	check_server_alive
done
bypass_load final 30 echo "$TARGET" -c 50 --size 1461 --verify -d 2s --timeout 5000
check_clean final 50
bypass_stop_server
grep -E "link_downs" "$TMP_DIR/coil-echo.log" | head -n 1 || true
echo "PASS: bypass_reconnect ($ROUNDS rounds)"
