#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Steering without eBPF, each case forced, each with its one log line:
#   classic BPF  (COIL_STEER_FORCE=cbpf, --steer cpu): connections from CPU
#                k (taskset) land on loop k, counted by the loops themselves
#                (COIL_STATS); least (and auto) without eBPF take the
#                kernel's hash instead, which spreads a burst from one CPU
#   kernel hash  (COIL_STEER_FORCE=none): connections from one CPU spread
#                over both loops; every byte echoed
#   --steer none, and auto with one loop: the kernel's hash, said why
#   not root     (setpriv to nobody): eBPF is refused, the kernel hashes
# coil-steer finds no eBPF maps for such servers and says so.
#
# usage: steer_fallback.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/steer_lib.sh"
lib_init steer_fallback "$@"
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

# loop_accepted <loop>: that loop's "N accepted" from the COIL_STATS line
# (printed at exit).
loop_accepted() {
	sed -n "s/^coil-echo: loop $1: .* \([0-9][0-9]*\) accepted\$/\1/p" "$SERVER_LOG"
}

expect_line() {
	steer_wait_line
	case $STEER_LINE in
	*"$1"*) ;;
	*) fail "want a 'steering: ...$1...' line, got: $STEER_LINE" ;;
	esac
}

echo "== classic BPF by receiving CPU (forced)"
COIL_STEER_FORCE=cbpf COIL_STATS=1 start_server --cores 2 --steer cpu
expect_line "steering: classic BPF, by receiving CPU ("
if [ -x "${COIL_STEER:-}" ]; then
	out=$("$COIL_STEER" --pid "$SERVER_PID" stats 2>&1) && fail "coil-steer found maps: $out"
	grep -q "no coil server with eBPF steering found with pid $SERVER_PID" <<<"$out" ||
		fail "coil-steer: unclear error: $out"
	echo "coil-steer: $out"
fi
hold a 20 1
hold b 10 0
release a
release b
run_integrity "classic BPF" 30 --conns 20 --waves 2 --msgs 4 --max-size 16384 --seed 41
stop_server
n0=$(loop_accepted 0) n1=$(loop_accepted 1)
echo "accepted: loop 0 $n0, loop 1 $n1 (20 from CPU 1, 10 from CPU 0, 40 unpinned)"
[ -n "$n0" ] && [ -n "$n1" ] || fail "no COIL_STATS lines"
# The 40 unpinned integrity connections may land anywhere.
[ "$n1" -ge 20 ] && [ "$n0" -ge 10 ] && [ $((n0 + n1)) -eq 70 ] ||
	fail "classic BPF: loop 0 $n0, loop 1 $n1"
# Pinned-only check: a second run without the integrity client.
COIL_STEER_FORCE=cbpf COIL_STATS=1 start_server --cores 2 --steer cpu
expect_line "steering: classic BPF, by receiving CPU ("
hold c 15 1
release c
stop_server
[ "$(loop_accepted 1)" = 15 ] && [ "$(loop_accepted 0)" = 0 ] ||
	fail "classic BPF: 15 from CPU 1 went $(loop_accepted 0)/$(loop_accepted 1)"

echo "== least without eBPF: the kernel's hash, not by receiving CPU"
# By receiving CPU, a burst from one CPU would all go to one loop; the hash
# spreads it: 200 connections from CPU 1, each loop 60..140 (binomial sd 7).
COIL_STEER_FORCE=cbpf COIL_STATS=1 start_server --cores 2 --steer least
expect_line "steering: kernel SO_REUSEPORT hash (eBPF unavailable: COIL_STEER_FORCE=cbpf; least needs eBPF"
hold e 200 1
release e
stop_server
n0=$(loop_accepted 0) n1=$(loop_accepted 1)
echo "accepted: loop 0 $n0, loop 1 $n1 (200 from CPU 1)"
[ "$n0" -ge 60 ] && [ "$n1" -ge 60 ] && [ $((n0 + n1)) -eq 200 ] ||
	fail "least without eBPF did not spread a burst from one CPU: $n0/$n1"

echo "== kernel hash (forced)"
COIL_STEER_FORCE=none COIL_STATS=1 start_server --cores 2 --steer cpu
expect_line "steering: kernel SO_REUSEPORT hash (COIL_STEER_FORCE=none)"
hold d 40 1
release d
run_integrity "kernel hash" 30 --conns 20 --waves 2 --msgs 4 --max-size 16384 --seed 42
stop_server
n0=$(loop_accepted 0) n1=$(loop_accepted 1)
echo "accepted: loop 0 $n0, loop 1 $n1 (40 from CPU 1, 40 unpinned)"
[ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] && [ $((n0 + n1)) -eq 80 ] ||
	fail "kernel hash did not spread: $n0/$n1"

echo "== --steer none, and auto with one loop"
start_server --cores 2 --steer none
expect_line "steering: kernel SO_REUSEPORT hash (--steer none)"
stop_server
start_server --cores 1
expect_line "steering: kernel SO_REUSEPORT hash (one loop, nothing to steer)"
stop_server

echo "== not root"
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	echo "not checked: needs root and setpriv to become nobody"
else
	cat >"$TMP_DIR/as-nobody" <<WRAP
#!/bin/sh
exec setpriv --reuid=65534 --regid=65534 --clear-groups "$COIL_ECHO" "\$@"
WRAP
	chmod +x "$TMP_DIR/as-nobody"
	start_named_server coil-echo "$TMP_DIR/as-nobody" --cores 2 --bufs 64
	expect_line "steering: kernel SO_REUSEPORT hash (eBPF unavailable: "
	if [ -n "${COIL_STEER_EXAMPLE:-}" ]; then
		grep -q "not permitted" <<<"$STEER_LINE" || fail "the reason is not 'not permitted'"
	fi
	run_integrity "as nobody" 30 --conns 10 --waves 2 --msgs 4 --max-size 16384 --seed 43
	stop_server
fi
echo "PASS: steer_fallback"
